"""The dashboard's probe loops, in a process of their own.

The screen's event loop then only draws: the probes' parsing never runs between key
presses, and the first round runs on another core while Textual is still loading.

The protocol is pickled frames (a 4-byte length, then the pickle) over two pipes:
- to the worker: ``("now", NAME, REQUEST_ID)`` asks for a round at once; in a spawned
  worker the first frame is the Config. End of file means the console is gone: the
  worker exits.
- from the worker: ``("snapshot", NAME, EnvironmentSnapshot, SERVED)`` or
  ``("error", NAME, TEXT, SERVED)``; SERVED holds the ids of the requests whose round
  this was (it started after they arrived).

Only the console (our own process) writes what the worker unpickles, and vice versa.
This module imports nothing heavy (the snapshot types, which both sides need): the HTTP
client loads in the worker only.
"""

from __future__ import annotations

import asyncio
import os
import pickle
import signal
import struct
import subprocess
import sys
import threading
import time
import traceback
from collections.abc import Iterator

from console import collector
from console.config.model import Config

# The frames' payload. Loaded here, before the worker is forked, because both sides need it:
# the worker then starts its first round without loading it again.
from console.probes import snapshot  # noqa: F401

_HEADER = struct.Struct("!I")


def frame(obj: object) -> bytes:
    data = pickle.dumps(obj, protocol=pickle.HIGHEST_PROTOCOL)
    return _HEADER.pack(len(data)) + data


class FrameReader:
    """Reassembles frames from a byte stream read in arbitrary pieces."""

    def __init__(self) -> None:
        self._buffer = bytearray()

    def feed(self, data: bytes) -> Iterator[object]:
        self._buffer += data
        while len(self._buffer) >= _HEADER.size:
            (size,) = _HEADER.unpack_from(self._buffer)
            if len(self._buffer) < _HEADER.size + size:
                return
            body = bytes(self._buffer[_HEADER.size : _HEADER.size + size])
            del self._buffer[: _HEADER.size + size]
            yield pickle.loads(body)


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view) :]


async def serve(config: Config, commands: int, out: int, reader: FrameReader | None = None) -> None:
    """Probe every environment in its own loop until the command pipe closes."""
    from console.probes.collect import Prober

    loop = asyncio.get_running_loop()
    wake = {name: asyncio.Event() for name in config.environments}
    pending: dict[str, list[int]] = {name: [] for name in config.environments}
    closed = asyncio.Event()
    reader = reader or FrameReader()

    def readable() -> None:
        try:
            data = os.read(commands, 65536)
        except BlockingIOError:
            return
        except OSError:
            data = b""
        if not data:
            closed.set()
            return
        for message in reader.feed(data):
            if isinstance(message, tuple) and len(message) == 3 and message[0] == "now" and message[1] in wake:
                pending[message[1]].append(message[2])
                wake[message[1]].set()

    os.set_blocking(commands, False)
    loop.add_reader(commands, readable)

    def send(message: tuple) -> None:
        try:
            _write_all(out, frame(message))
        except OSError:  # the console is gone
            closed.set()

    async def probe_loop(prober: Prober, name: str) -> None:
        env = config.environments[name]
        interval = config.thresholds.probe_interval_s
        while True:
            wake[name].clear()
            served, pending[name] = tuple(pending[name]), []
            try:
                send(("snapshot", name, await prober.snapshot(env), served))
            except Exception as exc:  # a bug in a probe must not end the loop
                send(("error", name, f"probe failed: {type(exc).__name__}: {exc}", served))
            try:
                await asyncio.wait_for(wake[name].wait(), interval)
            except TimeoutError:
                pass

    async with Prober(config) as prober:
        tasks = [asyncio.create_task(probe_loop(prober, name)) for name in config.environments]
        await closed.wait()
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
    loop.remove_reader(commands)


def _child_setup() -> None:
    # A worker lives as long as the console: never with its collector held (console/collector.py).
    collector.settle_held()
    # The terminal belongs to the console: the worker never reads it, never writes to
    # it, and Ctrl+C there is the console's to handle.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    null = os.open(os.devnull, os.O_RDWR)
    for fd in (0, 1, 2):
        os.dup2(null, fd)
    os.close(null)


def _run_child(config: Config, commands: int, out: int, reader: FrameReader | None = None) -> int:
    try:
        asyncio.run(serve(config, commands, out, reader))
        return 0
    except BaseException:  # say why before going: the console shows it
        try:
            for name in config.environments:
                _write_all(out, frame(("error", name, "probe worker failed: " + traceback.format_exc(limit=3), ())))
        except OSError:
            pass
        return 1


def _read_profiles(config: Config) -> None:
    """Read each environment's profile before the fork: both processes need it at once (the
    probes' rules, the dashboard's flag columns), and a copy made by the fork costs nothing."""
    from console.profile import ProfileError, profile_of

    for env in config.environments.values():
        try:
            profile_of(env)
        except ProfileError:
            pass  # kept with the path: whoever uses it says why


class ProbeWorker:
    """A running worker, seen from the console: send requests, read frames from ``out``."""

    def __init__(self, pid: int, commands: int, out: int, process: subprocess.Popen | None = None) -> None:
        self.closed = False
        self.pid = pid
        self.commands = commands  # write end: requests to the worker
        self.out = out  # read end: frames from the worker
        self._process = process
        os.set_blocking(out, False)

    @classmethod
    def start(cls, config: Config) -> ProbeWorker:
        """Fork when that is safe — one thread, no event loop running — as the CLI is before
        Textual loads (cheapest: the imports so far are shared); otherwise start a fresh
        interpreter."""
        try:
            asyncio.get_running_loop()
            running = True
        except RuntimeError:
            running = False
        if threading.active_count() == 1 and not running and hasattr(os, "fork"):
            return cls.fork(config)
        return cls.spawn(config)

    @classmethod
    def fork(cls, config: Config) -> ProbeWorker:
        _read_profiles(config)
        to_child_r, to_child_w = os.pipe()
        from_child_r, from_child_w = os.pipe()
        pid = os.fork()
        if pid == 0:  # the worker
            code = 1
            try:
                os.close(to_child_w)
                os.close(from_child_r)
                _child_setup()
                code = _run_child(config, to_child_r, from_child_w)
                from console import classcode

                classcode.save()  # the classes its rounds loaded (HTTP, database clients), for the next start
            finally:
                os._exit(code)  # never run the console's exit handlers or flush its buffers
        os.close(to_child_r)
        os.close(from_child_w)
        return cls(pid, to_child_w, from_child_r)

    @classmethod
    def spawn(cls, config: Config) -> ProbeWorker:
        process = subprocess.Popen(
            [sys.executable, "-m", "console.probes.worker"],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            start_new_session=True,  # Ctrl+C in the terminal is the console's
        )
        assert process.stdin is not None and process.stdout is not None
        commands, out = os.dup(process.stdin.fileno()), os.dup(process.stdout.fileno())
        process.stdin.close()
        process.stdout.close()
        worker = cls(process.pid, commands, out, process)
        worker._send(config)
        return worker

    def _send(self, message: object) -> None:
        try:
            _write_all(self.commands, frame(message))
        except OSError:
            pass  # the worker is gone: the console notices end of file on `out`

    def probe_now(self, name: str, request: int) -> None:
        self._send(("now", name, request))

    def read(self) -> bytes | None:
        """What the worker has written so far: None if nothing yet, b"" when it has gone."""
        try:
            return os.read(self.out, 1 << 20)
        except BlockingIOError:
            return None
        except OSError:
            return b""

    def close(self, timeout: float = 2.0) -> None:
        """Close the request pipe (the worker's signal to leave) and reap it. Idempotent."""
        if self.closed:
            return
        self.closed = True
        for fd in (self.commands, self.out):
            try:
                os.close(fd)
            except OSError:
                pass
        if self._process is not None:
            try:
                self._process.wait(timeout)
            except subprocess.TimeoutExpired:
                self._process.kill()
                self._process.wait()
            return
        waited = _wait_pid(self.pid, timeout)
        if not waited:
            try:
                os.kill(self.pid, signal.SIGKILL)
                os.waitpid(self.pid, 0)
            except (ProcessLookupError, ChildProcessError):
                pass


def _wait_pid(pid: int, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            done, _ = os.waitpid(pid, os.WNOHANG)
        except ChildProcessError:
            return True
        if done:
            return True
        time.sleep(0.02)
    return False


def main() -> int:
    """``python -m console.probes.worker``: the Config arrives first on stdin."""
    commands, out = os.dup(0), os.dup(1)  # the pipes, kept before stdio goes to /dev/null
    _child_setup()
    reader = FrameReader()
    config = None
    while config is None:
        data = os.read(commands, 65536)
        if not data:
            return 0
        for message in reader.feed(data):
            config = message
            break
    assert isinstance(config, Config)
    return _run_child(config, commands, out, reader)


if __name__ == "__main__":
    sys.exit(main())
