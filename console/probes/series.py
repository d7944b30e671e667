"""A rolling window of best-times latencies, for sparklines and p50/p95."""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field


def percentile(values: list[float], p: float) -> float | None:
    """Nearest-rank percentile (p in 0..100); None for no data."""
    if not values:
        return None
    ordered = sorted(values)
    rank = max(1, min(len(ordered), round(p / 100 * len(ordered) + 0.5)))
    return ordered[rank - 1]


@dataclass
class LatencySeries:
    """The last ``size`` probe rounds. A round without a latency (the API down) is kept as a
    gap: skipped, the window would hold latencies from before an outage as the latest, for
    as long as it lasts."""

    size: int = 120
    points: deque[tuple[float, float | None]] = field(default_factory=deque)  # (time, seconds or None)

    def add(self, when: float, latency_s: float | None) -> None:
        self.points.append((when, latency_s))
        while len(self.points) > self.size:
            self.points.popleft()

    @property
    def values(self) -> list[float]:
        """The latencies measured, gaps left out."""
        return [v for _, v in self.points if v is not None]

    @property
    def p50(self) -> float | None:
        return percentile(self.values, 50)

    @property
    def p95(self) -> float | None:
        return percentile(self.values, 95)
