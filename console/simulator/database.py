"""The ``posts`` schema, migrations 004/005 and their rollback scripts, and seeding a database.

The scripts are written into the app checkout (infra/db/migrations/) as the real project
keeps them: psql files with meta-commands (``\\d posts``). The simulator applies the same
text, minus the meta-commands, so what is on disk is what is in the database.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from console.simulator.dataset import Post

MIGRATIONS_DIR = "infra/db/migrations"

CREATE_POSTS = """\
-- Migration 001: channel posts collected by the ingestion worker.
\\set ON_ERROR_STOP on
BEGIN;
CREATE TABLE IF NOT EXISTS posts (
    id          BIGSERIAL PRIMARY KEY,
    channel_id  BIGINT      NOT NULL,
    message_id  BIGINT      NOT NULL,
    date        TIMESTAMPTZ NOT NULL,
    views       INTEGER     NOT NULL DEFAULT 0,
    forwards    INTEGER     NOT NULL DEFAULT 0,
    reactions   INTEGER     NOT NULL DEFAULT 0,
    replies     INTEGER     NOT NULL DEFAULT 0,
    text        TEXT,
    media_type  TEXT,        -- photo, video, animation, document; NULL for text-only posts
    created_at  TIMESTAMPTZ NOT NULL DEFAULT now(),
    UNIQUE (channel_id, message_id)
);
CREATE INDEX IF NOT EXISTS idx_posts_channel_date ON posts (channel_id, date DESC);
CREATE TABLE IF NOT EXISTS schema_migrations (
    version    TEXT PRIMARY KEY,
    applied_at TIMESTAMPTZ NOT NULL DEFAULT now()
);
INSERT INTO schema_migrations (version) VALUES ('001') ON CONFLICT DO NOTHING;
COMMIT;
"""

MIGRATION_004 = """\
-- Migration 004: content-type detection for the Phase 4 recommendation system.
-- Adds has_video / has_media, backfills them from media_type, and indexes them.
-- Rollback: 004_rollback.sql (drops the columns: the content-type data is lost).
\\set ON_ERROR_STOP on
\\echo 'Applying migration 004 (content-type columns)'
BEGIN;
ALTER TABLE posts ADD COLUMN IF NOT EXISTS has_video BOOLEAN DEFAULT FALSE;
ALTER TABLE posts ADD COLUMN IF NOT EXISTS has_media BOOLEAN DEFAULT FALSE;
UPDATE posts
   SET has_video = media_type IN ('video', 'animation'),
       has_media = media_type IS NOT NULL;
CREATE INDEX IF NOT EXISTS idx_posts_content_type ON posts (channel_id, has_video, has_media);
CREATE INDEX IF NOT EXISTS idx_posts_date_content ON posts (channel_id, date DESC, has_video, has_media);
INSERT INTO schema_migrations (version) VALUES ('004') ON CONFLICT DO NOTHING;
COMMIT;
\\d posts
"""

# The first DROP, then the rest: the fault variant breaks the script right after it.
_ROLLBACK_HEAD = """\
-- Rollback for migration 004: remove content-type detection.
-- WARNING: drops has_video / has_media; the content-type data is lost.
-- Flags must be off first (the advanced query and ingestion read these columns).
\\set ON_ERROR_STOP on
\\echo 'Rolling back migration 004 (content-type columns)'
\\d posts
DROP INDEX IF EXISTS idx_posts_content_type;
"""
_ROLLBACK_TAIL = """\
DROP INDEX IF EXISTS idx_posts_date_content;
ALTER TABLE posts DROP COLUMN IF EXISTS has_video;
ALTER TABLE posts DROP COLUMN IF EXISTS has_media;
DELETE FROM schema_migrations WHERE version = '004';
\\echo 'Columns after rollback (has_video, has_media must be gone):'
\\d posts
"""
ROLLBACK_004 = _ROLLBACK_HEAD + _ROLLBACK_TAIL
# Fault ``rollback_script_fails``: a typo'd index name without IF EXISTS. Run by psql
# without a transaction, it stops half-way: one index gone, the columns still there.
ROLLBACK_004_BROKEN = _ROLLBACK_HEAD + "DROP INDEX idx_posts_date_contnet;\n" + _ROLLBACK_TAIL

MIGRATION_005 = """\
-- Migration 005: speed up "best time for video" lookups.
-- Depends on migration 004: the partial index uses has_video, so dropping that column
-- drops this index too (silently).
\\set ON_ERROR_STOP on
BEGIN;
CREATE INDEX IF NOT EXISTS idx_posts_video_engagement ON posts (channel_id, date DESC, views) WHERE has_video;
INSERT INTO schema_migrations (version) VALUES ('005') ON CONFLICT DO NOTHING;
COMMIT;
"""

ROLLBACK_005 = """\
-- Rollback for migration 005.
\\set ON_ERROR_STOP on
DROP INDEX IF EXISTS idx_posts_video_engagement;
DELETE FROM schema_migrations WHERE version = '005';
"""

SCRIPTS: dict[str, str] = {
    "001_create_posts.sql": CREATE_POSTS,
    "004_add_content_type.sql": MIGRATION_004,
    "004_rollback.sql": ROLLBACK_004,
    "005_video_engagement_index.sql": MIGRATION_005,
    "005_rollback.sql": ROLLBACK_005,
}
ROLLBACK_SCRIPT = f"{MIGRATIONS_DIR}/004_rollback.sql"
MIGRATION_SCRIPT = f"{MIGRATIONS_DIR}/004_add_content_type.sql"
DEPENDENT_INDEX = "idx_posts_video_engagement"


def executable_sql(script: str) -> str:
    """The script without psql meta-commands (lines starting with a backslash)."""
    return "".join(line for line in script.splitlines(keepends=True) if not line.lstrip().startswith("\\"))


def write_migrations(repo: Path, names: Sequence[str] | None = None) -> list[Path]:
    """Write the migration scripts into a checkout; returns the paths written."""
    directory = repo / MIGRATIONS_DIR
    directory.mkdir(parents=True, exist_ok=True)
    out = []
    for name in names or SCRIPTS:
        path = directory / name
        path.write_text(SCRIPTS[name], encoding="utf-8")
        out.append(path)
    return out


def set_rollback_script_broken(repo: Path, broken: bool) -> Path:
    """Fault ``rollback_script_fails``: swap the rollback script on disk for the failing one, or back."""
    path = repo / ROLLBACK_SCRIPT
    path.write_text(ROLLBACK_004_BROKEN if broken else ROLLBACK_004, encoding="utf-8")
    return path


async def seed(conn: Any, channel_id: int, posts: Sequence[Post]) -> None:
    """Create the schema in an empty database, load the posts, apply migrations 004 and 005."""
    await conn.execute(executable_sql(CREATE_POSTS))
    await conn.copy_records_to_table(
        "posts",
        records=[
            (channel_id, p.message_id, p.date, p.views, p.forwards, p.reactions, p.replies, p.text, p.media_type)
            for p in posts
        ],
        columns=["channel_id", "message_id", "date", "views", "forwards", "reactions", "replies", "text", "media_type"],
    )
    await conn.execute("ANALYZE posts")
    await conn.execute(executable_sql(MIGRATION_004))
    await conn.execute(executable_sql(MIGRATION_005))
