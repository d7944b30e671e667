"""The runbook's validations after a rollback, read from a snapshot: the environment's
profile lists them (Phase 4: health · feature flag status · test recommendations · error
rate · response time); each is one kind of check the code knows (CHECK_KINDS). Each
passes only when it passes on every host. Health and the functional probe are judged as
the profile says (its endpoints, its answer's modes).
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from dataclasses import dataclass

from console.config.model import Thresholds
from console.flags import FlagSet
from console.probes.snapshot import EnvironmentSnapshot, HostSnapshot
from console.profile import ProfileError, profile_at
from console.profile.model import Mode, Profile, Validation


@dataclass(frozen=True)
class Check:
    name: str  # the validation's id in the profile
    passed: bool
    detail: str  # one line an operator reads
    hosts: tuple[tuple[str, bool, str], ...] = ()  # per host: (host, passed, detail)
    title: str = ""  # the profile's title for it


def _health(h: HostSnapshot, _t: Thresholds, _e: FlagSet | None, _v: Validation) -> tuple[bool, str]:
    """Every endpoint of the profile answers ok; the one that tells the truth is named when they disagree."""
    hr = h.health
    if not hr.endpoints:
        return False, hr.error or "health not measured"
    return hr.healthy, hr.describe()


def _flags(h: HostSnapshot, _t: Thresholds, expected: FlagSet | None, _v: Validation) -> tuple[bool, str]:
    f = h.flags
    want = expected or f.env_file
    if want is None:
        return False, f.env_file_error or "env file unreadable"
    if f.log is None:
        return False, f.log_error or "no flag line in the log"
    problems = []
    if expected is not None and f.env_file is not None and f.env_file != want:
        # The process may still be right, but the next restart would read the file.
        problems.append(f"the env file now says {f.env_file.describe()} (changed since the edit)")
    if f.log != want:
        problems.append(f"log says {f.log.describe()}")
    if f.process is not None and f.process != want:
        problems.append(f"process has {f.process.describe()}")
    elif f.process is None:
        problems.append(f.process_error or "process environment unreadable")
    if problems:
        return False, f"expected {want.describe()}, but " + "; ".join(problems)
    # Outside a run nothing was asked for: what passed is that the log and the process agree
    # with the env file, whatever it says (flags on included), and the detail says so.
    return True, f"log: {f.log.describe()}" + ("" if expected is not None else " (as the env file says)")


def _recommendations(
    h: HostSnapshot, _t: Thresholds, expected: FlagSet | None, _v: Validation, profile: Profile | None = None
) -> tuple[bool, str]:
    """The profile's functional probe answers ok, with data, in the modes the flags call for."""
    r = h.probe
    if r.problem:
        return False, r.problem
    if r.failed:
        return False, r.failure_text
    if r.kind != "ok":
        return False, f"{r.name} not answered"
    if r.data_present is False:
        return False, f"no data ({r.counted or 'nothing counted'})"
    detail = ", ".join(x for x in (r.counted, r.mode_text) if x)
    want = expected or h.flags.env_file
    missing = [m for m in _expected_modes(profile, want) if m.id not in r.modes]
    if missing:
        return False, f"{detail}, expected {', '.join(m.title or m.id for m in missing)}"
    return True, detail


def _expected_modes(profile: Profile | None, flags: FlagSet | None) -> list[Mode]:
    """The profile's modes the service answers in under these flags (Phase 4: the master flag decides)."""
    if profile is None or flags is None:
        return []
    values = dict(flags)
    if set(profile.flags.ids) - set(values):  # flags this source does not cover: nothing to expect
        return []
    effective = profile.flags.effective(values)
    return [m for m in profile.probe.answer.modes if m.expected(effective)]


def _errors(h: HostSnapshot, _t: Thresholds, _e: FlagSet | None, v: Validation) -> tuple[bool, str]:
    lg = h.logs
    allowed = v.max_error_lines or 0
    if lg.error:
        return False, lg.error
    if lg.window == 0:  # nothing read is nothing checked
        return False, f"no log line in {lg.described_span}: cannot tell whether there were errors"
    if lg.error_lines > allowed:
        sample = lg.error_samples[-1][:160] if lg.error_samples else ""
        most = f" (at most {allowed})" if allowed else ""
        return False, f"{lg.error_lines} ERROR line(s) in {lg.described_span}{most} — latest: {sample}"
    most = f" (at most {allowed})" if allowed else ""
    return True, f"{lg.error_lines} ERROR lines in {lg.described_span}{most}"


def _response_time(h: HostSnapshot, t: Thresholds, _e: FlagSet | None, v: Validation) -> tuple[bool, str]:
    r = h.probe
    if r.latency_s is None:
        return False, r.problem or "not measured"
    limit = t.response_time_s(v.below_s)
    ok = r.latency_s < limit
    detail = f"{r.latency_s:.2f}s ({'<' if ok else '≥'} {limit:g}s)"
    if r.measured:
        detail += f", {r.measured}"
    return ok, detail


def _memory(h: HostSnapshot, _t: Thresholds, _e: FlagSet | None, v: Validation) -> tuple[bool, str]:
    rss = h.memory.rss_mb
    if rss is None:
        return False, h.memory.error or "not measured"
    limit = v.below_mb if v.below_mb is not None else float("inf")
    ok = rss < limit
    return ok, f"RSS {rss:.0f} MB ({'<' if ok else '≥'} {limit:g} MB)"


CheckFn = Callable[[HostSnapshot, Thresholds, FlagSet | None, Validation], tuple[bool, str]]
CHECK_KINDS: dict[str, CheckFn] = {  # a profile's `check = …`: see console.profile.vocabulary
    "health": _health,
    "flags": _flags,
    "probe": _recommendations,
    "errors": _errors,
    "response_time": _response_time,
    "memory": _memory,
}


def _profile(snapshot: EnvironmentSnapshot) -> Profile | None:
    """The profile the snapshot's probes followed; None when it cannot be read (the probes said so)."""
    try:
        return profile_at(snapshot.profile)
    except ProfileError:
        return None


def validate(
    snapshot: EnvironmentSnapshot,
    thresholds: Thresholds,
    validations: tuple[Validation, ...],
    expected: FlagSet | dict[str, FlagSet] | None = None,
) -> tuple[Check, ...]:
    """The profile's validations. ``expected``: the flags a rollback meant to set, for every
    host or by host name (default, and for a host not named: the env file's)."""
    profile = _profile(snapshot)
    out = []
    for v in validations:
        check, name = CHECK_KINDS[v.check], v.id
        if v.check == "probe":  # its modes are the profile's
            check = functools.partial(_recommendations, profile=profile)
        per_host = []
        for h in snapshot.hosts:
            if h.unreachable:
                per_host.append((h.host, False, f"unreachable: {h.unreachable}"))
            else:
                want = expected.get(h.host) if isinstance(expected, dict) else expected
                per_host.append((h.host, *check(h, thresholds, want, v)))
        passed = all(ok for _, ok, _ in per_host)
        if len(per_host) == 1:
            detail = per_host[0][2]
        else:
            failed = [f"{host}: {d}" for host, ok, d in per_host if not ok]
            detail = (
                f"all {len(per_host)} hosts pass"
                if passed
                else f"{len(failed)} of {len(per_host)} hosts fail — " + "; ".join(failed[:3])
            )
            if v.check == "response_time":
                again = [h for h in snapshot.hosts if h.probe.measured]
                if again and passed:
                    detail += f" ({len(again)} slow at first, {again[0].probe.measured})"
        out.append(Check(name, passed, detail, tuple(per_host), v.title))
    return tuple(out)
