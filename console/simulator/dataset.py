"""The simulated channel's posts: deterministic, realistic enough to rank posting times.

The same rows feed the PostgreSQL ``posts`` table and the service's synthetic mode, so
both give the same answers (629 posts over the last 90 days, like the runbook's example).
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

CHANNEL_ID = -1001234567890
POST_COUNT = 629
SPAN_DAYS = 88  # every post falls inside the runbook's ?days=90 window

# Telegram media kinds; None is a text-only post.
MEDIA_WEIGHTS: tuple[tuple[str | None, int], ...] = (
    (None, 40),
    ("photo", 33),
    ("video", 17),
    ("animation", 3),
    ("document", 7),
)
VIDEO_KINDS = ("video", "animation")

# Audience rhythm: when posts go out and how many people see them.
_HOUR_WEIGHTS = [1, 1, 0, 0, 0, 1, 2, 4, 7, 9, 8, 6, 7, 8, 6, 5, 5, 6, 8, 10, 11, 9, 5, 2]
_HOUR_REACH = [
    float(x)
    for x in "0.5 0.4 0.3 0.3 0.3 0.4 0.6 0.8 1.0 1.2 1.1 1.0 1.1 1.15 1.0 0.95 0.9 1.0 1.2 1.4 1.5 1.3 1.0 0.7".split()
]
_WEEKDAY_REACH = [1.05, 1.1, 1.15, 1.1, 1.0, 0.8, 0.85]  # Monday first
_MEDIA_REACH = {None: 0.9, "photo": 1.1, "video": 1.45, "animation": 1.2, "document": 0.8}

_TOPICS = (
    "Weekly channel digest",
    "Top 5 posting-time tips",
    "Behind the scenes",
    "Community Q&A",
    "Product update",
    "Analytics deep dive",
    "Case study",
    "Quick poll results",
    "Tutorial",
    "Weekend reading list",
)
_EMOJI = ("📊", "🚀", "💡", "🎬", "📈", "🔥", "✅", "🗓️")


@dataclass(frozen=True)
class Post:
    message_id: int
    date: datetime
    views: int
    forwards: int
    reactions: int
    replies: int
    text: str
    media_type: str | None

    @property
    def has_video(self) -> bool:
        return self.media_type in VIDEO_KINDS

    @property
    def has_media(self) -> bool:
        return self.media_type is not None

    @property
    def engagement(self) -> int:
        """The service's engagement score: a forward or reaction is worth more than a view."""
        return self.views + 10 * self.forwards + 5 * self.reactions


def generate_posts(
    channel_id: int = CHANNEL_ID,
    *,
    count: int = POST_COUNT,
    now: datetime | None = None,
    seed: int | None = None,
) -> list[Post]:
    """``count`` posts for one channel, oldest first, all within the last SPAN_DAYS days."""
    rng = random.Random(seed if seed is not None else abs(channel_id) % 2**32)
    end = (now or datetime.now(UTC)).replace(minute=0, second=0, microsecond=0)
    kinds = [k for k, _ in MEDIA_WEIGHTS]
    kind_weights = [w for _, w in MEDIA_WEIGHTS]
    posts: list[tuple[datetime, str | None, float]] = []
    for _ in range(count):
        day = rng.randrange(1, SPAN_DAYS)
        hour = rng.choices(range(24), weights=_HOUR_WEIGHTS)[0]
        date = (end - timedelta(days=day)).replace(hour=hour, minute=rng.randrange(60))
        kind = rng.choices(kinds, weights=kind_weights)[0]
        reach = _HOUR_REACH[hour] * _WEEKDAY_REACH[date.weekday()] * _MEDIA_REACH[kind]
        posts.append((date, kind, reach * rng.lognormvariate(0, 0.25)))
    posts.sort(key=lambda p: p[0])
    out = []
    for i, (date, kind, reach) in enumerate(posts):
        views = int(1800 * reach)
        topic = rng.choice(_TOPICS)
        out.append(
            Post(
                message_id=1000 + i,
                date=date,
                views=views,
                forwards=int(views * rng.uniform(0.004, 0.02)),
                reactions=int(views * rng.uniform(0.01, 0.05)),
                replies=int(views * rng.uniform(0.0, 0.006)),
                text=f"{rng.choice(_EMOJI)} {topic} #{rng.randrange(1, 60)}",
                media_type=kind,
            )
        )
    return out
