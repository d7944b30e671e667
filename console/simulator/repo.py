"""The app checkout of a simulated host (HOME/app): a git repository with a real history.

The history is fixed (authors, dates, contents), so every host of every simulation has
the same commit ids, as hosts deployed from one release would. The Phase 4 commit adds
the flag-reading code; later commits touch other files, so ``git revert`` of it applies
cleanly. Migrations live in earlier commits: reverting Phase 4 keeps 004_rollback.sql.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

from console.simulator.database import SCRIPTS

PHASE4_MESSAGE = "Phase 4: Production deployment with feature flags"
AUTHOR = ("Analyticbot CI", "ci@analyticbot.example")


class RepoError(RuntimeError):
    pass


_POSTING_TIME_LEGACY = '''\
"""Best posting times for a channel."""

import logging

logger = logging.getLogger(__name__)


async def get_posting_time_metrics(db, channel_id: int, days: int = 90) -> dict:
    logger.info(f"⏰ Getting posting time metrics for channel {channel_id} ({days} days)")
    rows = await db.fetch(SIMPLE_QUERY, channel_id, days)
    return summarize(rows)
'''

_POSTING_TIME_PHASE4 = '''\
"""Best posting times for a channel."""

import logging

from app.config.feature_flags import flags

logger = logging.getLogger(__name__)


async def get_posting_time_metrics(db, channel_id: int, days: int = 90) -> dict:
    logger.info(f"⏰ Getting posting time metrics for channel {channel_id} ({days} days)")
    logger.info(
        f"🎛️ Feature flags - Advanced: {flags.advanced}, "
        f"Time-weighting: {flags.time_weighting}, Content-type: {flags.content_type}"
    )
    if flags.advanced:
        logger.info("Using ADVANCED query with new features")
        rows = await db.fetch(advanced_query(flags.time_weighting, flags.content_type), channel_id, days)
    else:
        logger.info("Using SIMPLE query (legacy mode)")
        rows = await db.fetch(SIMPLE_QUERY, channel_id, days)
    return summarize(rows, advanced=flags.advanced)
'''

_FEATURE_FLAGS = '''\
"""Phase 4 feature flags, read once at start-up."""

import os
from dataclasses import dataclass


def _flag(name: str) -> bool:
    return os.getenv(name, "true").lower() == "true"


@dataclass(frozen=True)
class Flags:
    advanced: bool = _flag("ENABLE_ADVANCED_RECOMMENDATIONS")
    time_weighting: bool = _flag("ENABLE_TIME_WEIGHTING")
    content_type: bool = _flag("ENABLE_CONTENT_TYPE_ANALYSIS")


flags = Flags()
'''

_MAIN = '''\
"""analyticbot API entry point (uvicorn app.main:app)."""

from app.version import VERSION


def create_app():
    return {"title": "analyticbot", "version": VERSION}


app = create_app()
'''

# (message, date, {path: content}); None deletes a file.
_HISTORY: list[tuple[str, str, dict[str, str | None]]] = [
    (
        "Initial analyticbot API service",
        "2025-09-02T10:14:00+00:00",
        {
            "README.md": "# analyticbot\n\nTelegram channel analytics API.\n",
            ".gitignore": "__pycache__/\n*.pyc\n.env.*\n!.env.example\n",
            "requirements.txt": "fastapi==0.115.0\nuvicorn==0.30.6\nasyncpg==0.30.0\n",
            "app/__init__.py": "",
            "app/version.py": 'VERSION = "7.3.0"\n',
            "app/main.py": _MAIN,
            ".env.example": "API_PORT=10300\nDATABASE_URL=postgresql://user:pass@localhost:10100/analytic_bot\n",
            "infra/db/migrations/001_create_posts.sql": SCRIPTS["001_create_posts.sql"],
        },
    ),
    (
        "Posting-time analytics: best hours and days (simple query)",
        "2025-10-14T15:02:00+00:00",
        {"app/services/__init__.py": "", "app/services/posting_time.py": _POSTING_TIME_LEGACY},
    ),
    (
        "Migration 004: content-type columns has_video, has_media",
        "2025-11-10T09:40:00+00:00",
        {f"infra/db/migrations/{n}": SCRIPTS[n] for n in ("004_add_content_type.sql", "004_rollback.sql")},
    ),
    (
        "Migration 005: partial index for video engagement",
        "2025-11-14T11:05:00+00:00",
        {f"infra/db/migrations/{n}": SCRIPTS[n] for n in ("005_video_engagement_index.sql", "005_rollback.sql")},
    ),
    (
        PHASE4_MESSAGE,
        "2025-11-20T17:30:00+00:00",
        {
            "app/config/__init__.py": "",
            "app/config/feature_flags.py": _FEATURE_FLAGS,
            "app/services/posting_time.py": _POSTING_TIME_PHASE4,
            ".env.example": (
                "API_PORT=10300\nDATABASE_URL=postgresql://user:pass@localhost:10100/analytic_bot\n"
                "ENABLE_ADVANCED_RECOMMENDATIONS=true\nENABLE_TIME_WEIGHTING=true\nENABLE_CONTENT_TYPE_ANALYSIS=true\n"
            ),
        },
    ),
    (
        "docs: Phase 4 rollback procedures",
        "2025-11-21T08:12:00+00:00",
        {"docs/phase4-rollback-procedures.md": "# Phase 4 Rollback Procedures\n\nSee the operations runbook.\n"},
    ),
    ("Release 7.5.0", "2025-11-21T12:00:00+00:00", {"app/version.py": 'VERSION = "7.5.0"\n'}),
]


def git(repo: Path, *args: str, env: dict[str, str] | None = None) -> str:
    result = subprocess.run(
        ["git", "-C", str(repo), *args], capture_output=True, text=True, env=env, check=False, timeout=60
    )
    if result.returncode != 0:
        raise RepoError(f"git {' '.join(args)} failed in {repo}: {result.stderr.strip()[-500:]}")
    return result.stdout


_TEMPLATE: Path | None = None  # the first release repository this process built; copied afterwards


def create(repo: Path) -> None:
    """Create the release repository with its history at ``repo`` (a copy when one was built before:
    the history is fixed, so the commit ids are the same either way)."""
    global _TEMPLATE
    if _TEMPLATE is not None and (_TEMPLATE / ".git").is_dir():
        shutil.copytree(_TEMPLATE, repo, symlinks=True)
        return
    _build(repo)
    _TEMPLATE = repo


def _build(repo: Path, history: list[tuple[str, str, dict[str, str | None]]] = _HISTORY) -> None:
    repo.mkdir(parents=True, exist_ok=True)
    git(repo, "init", "-q", "-b", "main")
    _configure(repo)
    for message, date, files in history:
        for rel, content in files.items():
            path = repo / rel
            if content is None:
                path.unlink(missing_ok=True)
                continue
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(content, encoding="utf-8")
        git(repo, "add", "-A")
        env = {**os.environ, "GIT_AUTHOR_DATE": date, "GIT_COMMITTER_DATE": date}
        env.update({"GIT_AUTHOR_NAME": AUTHOR[0], "GIT_AUTHOR_EMAIL": AUTHOR[1]})
        env.update({"GIT_COMMITTER_NAME": AUTHOR[0], "GIT_COMMITTER_EMAIL": AUTHOR[1]})
        git(repo, "commit", "-q", "--no-verify", "-m", message, env=env)


def create_with(repo: Path, history: list[tuple[str, str, dict[str, str | None]]]) -> None:
    """A release repository with another service's history (a profile world's)."""
    _build(repo, history)


def _configure(repo: Path) -> None:
    # Repo-local identity and settings: works with no global git config, ignores a global one's signing.
    for key, value in (
        ("user.name", AUTHOR[0]),
        ("user.email", AUTHOR[1]),
        ("commit.gpgsign", "false"),
        ("core.autocrlf", "false"),
    ):
        git(repo, "config", key, value)


def clone(origin: Path, repo: Path) -> None:
    """A host's checkout of the release repository (cheaper than replaying the history)."""
    repo.parent.mkdir(parents=True, exist_ok=True)
    git(repo.parent, "clone", "-q", "--no-hardlinks", str(origin), repo.name)
    _configure(repo)


def phase4_commit(repo: Path) -> str | None:
    """The id of the commit whose message is exactly the Phase 4 one, if any."""
    out = git(repo, "log", "--format=%H%x00%s")
    for line in out.splitlines():
        sha, _, subject = line.partition("\0")
        if subject == PHASE4_MESSAGE:
            return sha
    return None
