"""The three Phase 4 feature flags and how the service reads them."""

from __future__ import annotations

from dataclasses import dataclass

ADVANCED = "ENABLE_ADVANCED_RECOMMENDATIONS"
TIME_WEIGHTING = "ENABLE_TIME_WEIGHTING"
CONTENT_TYPE = "ENABLE_CONTENT_TYPE_ANALYSIS"
FLAG_NAMES: tuple[str, str, str] = (ADVANCED, TIME_WEIGHTING, CONTENT_TYPE)

# Labels as the service prints them in its "Feature flags" log line.
LOG_LABELS = {ADVANCED: "Advanced", TIME_WEIGHTING: "Time-weighting", CONTENT_TYPE: "Content-type"}
SHORT = {ADVANCED: "advanced", TIME_WEIGHTING: "time_weighting", CONTENT_TYPE: "content_type"}


def flag_value(raw: str | None) -> bool:
    """The service's own rule: ``os.getenv(NAME, "true").lower() == "true"``.

    Missing means true; anything but "true" (any case) means false.
    """
    if raw is None:
        return True
    return raw.lower() == "true"


@dataclass(frozen=True)
class FlagSet:
    """The effective value of the three flags as one source sees them."""

    advanced: bool
    time_weighting: bool
    content_type: bool

    @classmethod
    def from_mapping(cls, values: dict[str, str | None]) -> FlagSet:
        return cls(
            advanced=flag_value(values.get(ADVANCED)),
            time_weighting=flag_value(values.get(TIME_WEIGHTING)),
            content_type=flag_value(values.get(CONTENT_TYPE)),
        )

    def get(self, name: str) -> bool:
        return getattr(self, SHORT[name])

    def as_env(self) -> dict[str, str]:
        return {name: "true" if self.get(name) else "false" for name in FLAG_NAMES}

    def as_dict(self) -> dict[str, bool]:
        return {SHORT[name]: self.get(name) for name in FLAG_NAMES}

    @property
    def mode(self) -> str:
        """Which query the service runs: the master flag decides."""
        return "advanced" if self.advanced else "legacy"

    def describe(self) -> str:
        return ", ".join(f"{LOG_LABELS[n]}: {self.get(n)}" for n in FLAG_NAMES)


ALL_ON = FlagSet(True, True, True)
ALL_OFF = FlagSet(False, False, False)
