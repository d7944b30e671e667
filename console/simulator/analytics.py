"""Best posting times: the legacy ("SIMPLE") and the Phase 4 ("ADVANCED") query.

Both run as real SQL on the ``posts`` table when the service has a database, and as a
synthetic twin over :mod:`dataset` otherwise. Either way they yield the same rows, one
per (day of week, hour) slot, from which :func:`build_data` makes the response's ``data``.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from datetime import datetime, timedelta
from typing import Any

from console.simulator.dataset import Post
from console.simulator.settings import FlagSet

DAY_NAMES = ("Sunday", "Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday")  # PostgreSQL DOW order
CONTENT_TYPES = ("video", "media", "text")
DECAY_DAYS = 30.0  # time-weighting: a post's weight halves roughly every three weeks

LEGACY_SQL = """
SELECT EXTRACT(DOW FROM p.date AT TIME ZONE 'UTC')::int AS dow,
       EXTRACT(HOUR FROM p.date AT TIME ZONE 'UTC')::int AS hour,
       COUNT(*)::int AS posts,
       AVG(p.views)::float8 AS avg_views,
       AVG(p.views + 10 * p.forwards + 5 * p.reactions)::float8 AS score
FROM posts p
WHERE p.channel_id = $1 AND p.date >= now() - make_interval(days => $2)
GROUP BY 1, 2
ORDER BY 1, 2
"""


class QueryError(RuntimeError):
    """The analytics query failed (the synthetic twin of a database error)."""


def advanced_sql(time_weighting: bool, content_type: bool) -> str:
    """The Phase 4 query as the real service composes it from its sub-flags.

    Its known bug is kept: the content-type join is always emitted, but its CTE only
    when content-type analysis is on, so Scenario B (master on, content-type off)
    fails with ``relation "content_type_stats" does not exist``.
    """
    weight = f"exp(-EXTRACT(EPOCH FROM (now() - p.date)) / 86400.0 / {DECAY_DAYS})" if time_weighting else "1.0"
    content_columns = ",\n           p.has_video, p.has_media" if content_type else ""
    ctes = [
        f"""recent AS (
    SELECT EXTRACT(DOW FROM p.date AT TIME ZONE 'UTC')::int AS dow,
           EXTRACT(HOUR FROM p.date AT TIME ZONE 'UTC')::int AS hour,
           p.views,
           (p.views + 10 * p.forwards + 5 * p.reactions)::float8 AS engagement,
           ({weight})::float8 AS w{content_columns}
    FROM posts p
    WHERE p.channel_id = $1 AND p.date >= now() - make_interval(days => $2)
)""",
        """slots AS (
    SELECT dow, hour, COUNT(*)::int AS posts, AVG(views)::float8 AS avg_views,
           (SUM(engagement * w) / NULLIF(SUM(w), 0))::float8 AS score
    FROM recent GROUP BY dow, hour
)""",
    ]
    if content_type:
        ctes.append(
            """content_type_stats AS (
    SELECT dow, hour,
           COUNT(*) FILTER (WHERE has_video)::int AS video_posts,
           (SUM(engagement * w) FILTER (WHERE has_video) / NULLIF(SUM(w) FILTER (WHERE has_video), 0))::float8
               AS video_score,
           COUNT(*) FILTER (WHERE has_media AND NOT has_video)::int AS media_posts,
           (SUM(engagement * w) FILTER (WHERE has_media AND NOT has_video)
               / NULLIF(SUM(w) FILTER (WHERE has_media AND NOT has_video), 0))::float8 AS media_score,
           COUNT(*) FILTER (WHERE NOT has_media)::int AS text_posts,
           (SUM(engagement * w) FILTER (WHERE NOT has_media)
               / NULLIF(SUM(w) FILTER (WHERE NOT has_media), 0))::float8 AS text_score
    FROM recent GROUP BY dow, hour
)"""
        )
    return (
        "WITH "
        + ",\n".join(ctes)
        + """
SELECT s.dow, s.hour, s.posts, s.avg_views, s.score,
       ct.video_posts, ct.video_score, ct.media_posts, ct.media_score, ct.text_posts, ct.text_score
FROM slots s
LEFT JOIN content_type_stats ct USING (dow, hour)
ORDER BY s.dow, s.hour
"""
    )


def query_for(flags: FlagSet) -> str:
    return advanced_sql(flags.time_weighting, flags.content_type) if flags.advanced else LEGACY_SQL


def synthetic_rows(posts: Iterable[Post], flags: FlagSet, *, days: int, now: datetime) -> list[dict[str, Any]]:
    """What the SQL above returns, computed in Python over the synthetic posts."""
    if flags.advanced and not flags.content_type:
        raise QueryError('relation "content_type_stats" does not exist')
    since = now - timedelta(days=days)
    slots: dict[tuple[int, int], dict[str, Any]] = {}
    for post in posts:
        if post.date < since:
            continue
        key = ((post.date.weekday() + 1) % 7, post.date.hour)
        w = 1.0
        if flags.advanced and flags.time_weighting:
            w = math.exp(-(now - post.date).total_seconds() / 86400.0 / DECAY_DAYS)
        s = slots.setdefault(key, {"posts": 0, "views": 0, "plain": 0.0, "ew": 0.0, "w": 0.0, "types": {}})
        s["posts"] += 1
        s["views"] += post.views
        s["plain"] += post.engagement
        s["ew"] += post.engagement * w
        s["w"] += w
        kind = "video" if post.has_video else "media" if post.has_media else "text"
        t = s["types"].setdefault(kind, [0, 0.0, 0.0])
        t[0] += 1
        t[1] += post.engagement * w
        t[2] += w
    rows = []
    for (dow, hour), s in sorted(slots.items()):
        row: dict[str, Any] = {"dow": dow, "hour": hour, "posts": s["posts"], "avg_views": s["views"] / s["posts"]}
        if flags.advanced:
            row["score"] = s["ew"] / s["w"]
            for kind in CONTENT_TYPES:
                n, ew, w = s["types"].get(kind, (0, 0.0, 0.0))
                row[f"{kind}_posts"] = n
                row[f"{kind}_score"] = ew / w if w else None
        else:
            row["score"] = s["plain"] / s["posts"]
        rows.append(row)
    return rows


def _confidence(posts: int) -> float:
    return round(min(0.95, posts / (posts + 12)), 2) if posts else 0.0


def _group(rows: Sequence[dict[str, Any]], key: str, prefix: str = "") -> dict[int, tuple[int, float]]:
    """(posts, post-weighted mean score) per value of ``key``, for one content type or all."""
    acc: dict[int, list[float]] = {}
    for r in rows:
        n = r.get(f"{prefix}posts") or 0
        score = r.get(f"{prefix}score")
        if n and score is not None:
            a = acc.setdefault(r[key], [0, 0.0])
            a[0] += n
            a[1] += score * n
    return {k: (int(n), total / n) for k, (n, total) in acc.items()}


def build_data(rows: Sequence[dict[str, Any]], flags: FlagSet, *, data_source: str) -> dict[str, Any]:
    """The response's ``data``. Legacy mode: the advanced lists are [] and the summary is None."""
    total = sum(r["posts"] for r in rows)
    hours = _group(rows, "hour")
    days = _group(rows, "dow")
    ranked_hours = sorted((h for h in hours.items() if h[1][0] >= 3), key=lambda h: -h[1][1])
    ranked_days = sorted(days.items(), key=lambda d: -d[1][1])
    data: dict[str, Any] = {
        "best_times": [
            {"hour": h, "confidence": _confidence(n), "avg_engagement": round(s, 1), "post_count": n}
            for h, (n, s) in ranked_hours[:3]
        ],
        "best_days": [
            {
                "day": d,
                "day_name": DAY_NAMES[d],
                "confidence": _confidence(n),
                "avg_engagement": round(s, 1),
                "post_count": n,
            }
            for d, (n, s) in ranked_days[:3]
        ],
        "hourly_engagement_trend": [
            {"hour": h, "avg_engagement": round(s, 1), "post_count": n} for h, (n, s) in sorted(hours.items())
        ],
        "daily_performance": [
            {"day": d, "day_name": DAY_NAMES[d], "avg_engagement": round(s, 1), "post_count": n}
            for d, (n, s) in sorted(days.items())
        ],
        "total_posts_analyzed": total,
        "confidence": _confidence(total),
        "data_source": data_source,
        "best_day_hour_combinations": [],
        "content_type_recommendations": [],
        "content_type_summary": None,
    }
    if flags.advanced and total:
        slots = sorted((r for r in rows if r["posts"] >= 2), key=lambda r: -r["score"])
        data["best_day_hour_combinations"] = [
            {
                "day": r["dow"],
                "day_name": DAY_NAMES[r["dow"]],
                "hour": r["hour"],
                "avg_engagement": round(r["score"], 1),
                "post_count": r["posts"],
                "confidence": _confidence(r["posts"]),
            }
            for r in slots[:5]
        ]
        data["content_type_recommendations"], data["content_type_summary"] = _content_types(rows, total)
    return data


def _content_types(rows: Sequence[dict[str, Any]], total: int) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    recommendations = []
    summary: dict[str, Any] = {}
    best: tuple[float, str] | None = None
    for kind in CONTENT_TYPES:
        by_hour = _group(rows, "hour", f"{kind}_")
        posts = sum(n for n, _ in by_hour.values())
        if not posts:
            summary[kind] = {"posts": 0, "share": 0.0, "avg_engagement": None}
            continue
        mean = sum(n * s for n, s in by_hour.values()) / posts
        summary[kind] = {"posts": posts, "share": round(posts / total, 3), "avg_engagement": round(mean, 1)}
        best = max(best or (mean, kind), (mean, kind))
        top = [h for h, _ in sorted(by_hour.items(), key=lambda h: -h[1][1])[:3]]
        recommendations.append(
            {
                "content_type": kind,
                "best_hours": top,
                "avg_engagement": round(mean, 1),
                "post_count": posts,
                "recommendation": f"Post {kind} content around {top[0]:02d}:00",
            }
        )
    summary["best_content_type"] = best[1] if best else None
    return recommendations, summary


def failed_data(channel_id: int, error: str) -> dict[str, Any]:
    """What the real service answers, with HTTP 200, when the analysis fails internally."""
    return {"channel_id": channel_id, "best_times": [], "error": error, "status": "failed", "data_source": "error"}
