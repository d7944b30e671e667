"""The code reads the runbook from the profile: outside the simulator (which plays the
service) and the profile files, no module names a profile's service, flag, endpoint, log
line or troubleshooting issue title — so a second service is a second file, not a fork."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from console.profile import PROFILE_DIR, Profile, load_profile

ROOT = Path(__file__).resolve().parent.parent
SCANNED = ("console", "screens")
EXEMPT_DIRS = (ROOT / "console" / "simulator",)  # the simulated service is the service
# The one place that names a profile: which file is the default (a file name, not runbook knowledge).
EXEMPT_LINES = {("console/profile/load.py", 'DEFAULT_PROFILE = PROFILE_DIR / "analyticbot-phase4.toml"')}


def names(profile: Profile) -> set[str]:
    """What only this service's runbook would know."""
    out = {profile.info.service}
    out |= {f.env for f in profile.flags.flags}
    health = (profile.health.liveness, profile.health.readiness)
    out |= {e.endpoint for e in health if e is not None}
    probe = profile.probe
    out.add(probe.request.endpoint.split("{", 1)[0].rstrip("/"))
    if probe.login is not None:
        out.add(probe.login.endpoint)
    out.add(profile.log.request_line)
    out.add(profile.log.flag_line.template.split("{", 1)[0].strip())  # "Feature flags - Advanced:"
    out |= {line for _, line in profile.log.mode_lines}
    out |= {i.title for i in profile.troubleshooting}
    return {n for n in out if len(n) >= 4}  # a word that short would be any code's


def profiles() -> list[Profile]:
    return [load_profile(p) for p in sorted(PROFILE_DIR.glob("*.toml"))]


def test_every_shipped_profile_is_scanned_for() -> None:
    ids = {p.info.id for p in profiles()}
    assert {"analyticbot-phase4", "searchd-semantic"} <= ids
    assert "ENABLE_ADVANCED_RECOMMENDATIONS" in names(load_profile(PROFILE_DIR / "analyticbot-phase4.toml"))


@pytest.mark.parametrize("profile", profiles(), ids=lambda p: p.info.id)
def test_no_module_names_the_service(profile: Profile) -> None:
    tokens = sorted(names(profile), key=len, reverse=True)
    pattern = re.compile("|".join(re.escape(t) + r"(?![\w])" for t in tokens), re.IGNORECASE)
    found = []
    for top in SCANNED:
        for path in sorted((ROOT / top).rglob("*.py")):
            if any(path.is_relative_to(d) for d in EXEMPT_DIRS):
                continue
            rel = path.relative_to(ROOT).as_posix()
            for n, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
                if (rel, line.strip()) in EXEMPT_LINES:
                    continue
                for m in pattern.finditer(line):
                    found.append(f"{rel}:{n}: {m.group(0)!r}")
    assert not found, f"{len(found)} mention(s) of {profile.info.service}'s runbook in the code:\n" + "\n".join(found)
