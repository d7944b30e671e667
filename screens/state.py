"""What the console knows about each environment right now, fed by the probe loops."""

from __future__ import annotations

from dataclasses import dataclass, field

from console.config.model import Environment
from console.probes.logs import LogRules, rules_for
from console.probes.series import LatencySeries
from console.probes.snapshot import EnvironmentSnapshot
from console.profile import Profile, profile_of
from console.runbook.matrix import DecisionMatrix, Recommendation, evaluate


@dataclass
class LiveEnvironment:
    env: Environment
    snapshot: EnvironmentSnapshot | None = None
    recommendation: Recommendation | None = None
    series: LatencySeries = field(default_factory=LatencySeries)
    declared: set[str] = field(default_factory=set)  # symptoms the operator declared
    probe_error: str | None = None
    rounds: int = 0

    @property
    def profile(self) -> Profile:
        """The environment's service profile (read once per process)."""
        return profile_of(self.env)

    @property
    def log_rules(self) -> LogRules:
        return rules_for(self.profile.log)

    def update(self, snapshot: EnvironmentSnapshot, matrix: DecisionMatrix) -> None:
        self.snapshot = snapshot
        self.probe_error = None
        self.rounds += 1
        self.series.add(snapshot.taken_at, snapshot.response_time_s)
        self.recommendation = evaluate(matrix, snapshot, self.declared)

    def reevaluate(self, matrix: DecisionMatrix) -> None:
        if self.snapshot is not None:
            self.recommendation = evaluate(matrix, self.snapshot, self.declared)
