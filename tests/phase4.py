"""The Phase 4 profile's flags under the names the tests use (tests may name analyticbot; the
console's code may not: it reads these from the profile)."""

from __future__ import annotations

from console.flags import FlagSet
from console.probes.logs import LogRules, rules_for
from console.profile import Profile, profile_at
from console.runbook.checklist import profile_checklist

PROFILE: Profile = profile_at(None)  # the default profile: sample_configs/profiles/analyticbot-phase4.toml
RULES = PROFILE.flags
LOG: LogRules = rules_for(PROFILE.log)

ADVANCED = RULES.flag("advanced").env
TIME_WEIGHTING = RULES.flag("time_weighting").env
CONTENT_TYPE = RULES.flag("content_type").env
FLAG_NAMES: tuple[str, str, str] = (ADVANCED, TIME_WEIGHTING, CONTENT_TYPE)
REQUEST_LINE = PROFILE.log.request_line

CHECKLIST = profile_checklist(PROFILE)  # the post-rollback checklist, as the console keeps it

ALL_ON = FlagSet.every(RULES, True)
ALL_OFF = FlagSet.every(RULES, False)


def flags(advanced: bool, time_weighting: bool, content_type: bool) -> FlagSet:
    """A Phase 4 FlagSet, in the runbook's order."""
    return FlagSet(RULES, {"advanced": advanced, "time_weighting": time_weighting, "content_type": content_type})


def flag_value(raw: str | None) -> bool:
    """The service's own rule for one value (every Phase 4 flag reads the same)."""
    return RULES.read("advanced", raw)


def by_env(values: FlagSet) -> dict[str, bool]:
    return values.by_env()
