"""A run's result per host: each step's latest outcome on each host (the fleet grid)."""

from __future__ import annotations

from typing import Any

from console.journal.runs import RunSummary


def host_grid(run: RunSummary, phase: str = "run") -> dict[str, Any]:
    """{hosts: {host: {ok, failed_step, steps: [...]}}, environment_steps: [...], failed_hosts: [...],
    not_started: [...]}.

    A step retried on a host counts by its latest outcome, so "retry the failed hosts"
    turns their rows green.
    """
    latest: dict[tuple[str, str], dict[str, Any]] = {}
    order: list[tuple[str, str]] = []
    for r in run.records:
        if r["type"] not in ("step_started", "step_finished", "step_failed"):
            continue
        d = r.get("data") or {}
        if d.get("phase", "run") != phase or not d.get("step"):
            continue
        key = (str(d.get("host") or "*"), str(d["step"]))
        if key not in latest:
            order.append(key)
        status = {"step_started": "running", "step_finished": "ok", "step_failed": "failed"}[r["type"]]
        entry = latest.setdefault(key, {"step": key[1], "title": run.step_title(key[1], phase)})
        entry["status"] = status
        if r["type"] != "step_started":
            entry["elapsed_s"] = d.get("elapsed_s")
            entry["detail"] = d.get("message")
    hosts: dict[str, dict[str, Any]] = {}
    environment: list[dict[str, Any]] = []
    for key in order:
        host, _ = key
        entry = latest[key]
        if host == "*":
            environment.append(entry)
            continue
        h = hosts.setdefault(host, {"ok": True, "failed_step": None, "steps": []})
        h["steps"].append(entry)
        if entry["status"] != "ok" and h["ok"]:
            h["ok"] = False
            h["failed_step"] = entry["title"] if entry["status"] == "failed" else None
    failed = sorted(h for h, v in hosts.items() if v["failed_step"])
    # Hosts a stopped stage never reached (stop-on-first-failure, a failed rolling batch):
    # no step record names them, only the run's end does. A later resume that reaches them
    # records their steps, and its own end says who is still waiting.
    ends = [r for r in run.records if r["type"] in ("run_started", "run_finished")]
    last_undo = next(
        (bool((r.get("data") or {}).get("undo")) for r in reversed(ends) if r["type"] == "run_started"), False
    )
    waiting: list[Any] = []
    if ends and ends[-1]["type"] == "run_finished" and last_undo == (phase == "undo"):
        waiting = (ends[-1].get("data") or {}).get("not_started") or []
    not_started = [str(h) for h in waiting if str(h) not in hosts or not hosts[str(h)]["steps"]]
    for h in not_started:
        hosts[h] = {"ok": False, "failed_step": None, "not_started": True, "steps": []}
    return {"hosts": hosts, "environment_steps": environment, "failed_hosts": failed, "not_started": not_started}
