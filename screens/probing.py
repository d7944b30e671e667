"""The dashboard's eyes: the probe worker process (one probe loop per environment) feeding
the console its rounds, and a fresh round on demand; mixed into the app (screens/app.py)."""

from __future__ import annotations

import asyncio
import functools
from typing import TYPE_CHECKING

from console.probes.worker import FrameReader, ProbeWorker
from console.runbook.matrix import DecisionMatrix, matrix_of

if TYPE_CHECKING:
    from console.probes.collect import Prober
    from screens.app import RollbackConsole

    _App = RollbackConsole
else:
    _App = object


class ProbeFeed(_App):
    @functools.cached_property
    def prober(self) -> Prober:
        """For the engine's own probes; the dashboard's loops run in the probe worker."""
        from console.probes.collect import Prober

        return Prober(self.config)

    def _start_probe_worker(self) -> None:
        if self._leaving:
            return
        if self._worker is None:
            try:
                self._worker = ProbeWorker.spawn(self.config)
            except OSError as exc:  # e.g. out of processes: say so, try again shortly
                self._probe_worker_lost(f"cannot start the probe worker: {exc}")
                return
        self._frames = FrameReader()
        asyncio.get_running_loop().add_reader(self._worker.out, self._probe_readable)

    def _stop_probe_worker(self) -> None:
        if self._worker is not None:
            asyncio.get_running_loop().remove_reader(self._worker.out)
            self._worker.close(timeout=1.0)
            self._worker = None
        for future in self._waiting.values():
            if not future.done():
                future.set_result(None)
        self._waiting.clear()

    def _probe_worker_lost(self, why: str) -> None:
        for name, live in self.live.items():
            live.probe_error = why
            self.env_updated.publish(name)
        self.set_timer(2.0, self._start_probe_worker)

    def _probe_readable(self) -> None:
        assert self._worker is not None
        data = self._worker.read()
        if data is None:
            return
        if not data:  # the worker has gone: say so, and start another
            self._stop_probe_worker()
            self._probe_worker_lost("probe worker stopped; restarting it")
            return
        for kind, name, payload, served in self._frames.feed(data):  # type: ignore[misc]
            live = self.live.get(name)
            if live is None:
                continue
            if kind == "snapshot":
                live.update(payload, self.matrix(name))
            else:
                live.probe_error = payload
            self.env_updated.publish(name)
            for request in served:
                future = self._waiting.pop(request, None)
                if future is not None and not future.done():
                    future.set_result(None)
        if self._journal_look_due and all(live.rounds or live.probe_error for live in self.live.values()):
            # After the refresh that runs the dashboard's drawing of these rounds, and the one that paints it.
            self.call_after_refresh(self.call_after_refresh, self._look_at_journal)

    def matrix(self, name: str) -> DecisionMatrix:
        """The decision matrix of an environment (the config's, else its profile's)."""
        if name not in self._matrices:
            self._matrices[name] = matrix_of(self.config, self.config.environment(name))
        return self._matrices[name]

    def publish(self, name: str) -> None:
        """Re-render an environment after a local change (e.g. declared symptoms)."""
        self.live[name].reevaluate(self.matrix(name))
        self.env_updated.publish(name)

    async def probe_now(self, name: str) -> None:
        """A fresh round for one environment, started after this call; returns when shown."""
        live = self.live[name]
        if self._worker is None:
            live.update(await self.prober.snapshot(live.env), self.matrix(name))
            self.env_updated.publish(name)
            return
        request = next(self._request_ids)
        future = self._waiting[request] = asyncio.get_running_loop().create_future()
        self._worker.probe_now(name, request)
        try:
            await asyncio.wait_for(future, self.config.thresholds.probe_timeout_s * 3 + 5)
        except TimeoutError:
            self._waiting.pop(request, None)
