"""Files kept beside the journal (the run index, the verify checkpoint): derived data, never
the record itself. Read with the journal's care (regular files only, bounded, hostile-proof
JSON); written whole (a temporary file renamed over the old one, so a reader sees the old
or the new, never half) with the journal's permissions, so every operator of the group can
replace them. Any problem reading one means "not there": the journal is the truth, and the
caller starts over from it."""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import secrets
from pathlib import Path
from typing import Any

from console import files, safe_json
from console.journal.writer import FILE_MODE

MAX_BYTES = 512 * 1024 * 1024  # a run index of years stays far below this
MAX_DEPTH = 16


def digest(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def identity(st: os.stat_result) -> list[int]:
    """Which file this is: a replaced journal (same name, new file) is another one."""
    return [st.st_dev, st.st_ino]


def load(path: Path, kind: str) -> dict[str, Any] | None:
    """The sidecar's JSON object if it is one of ``kind``; None if missing or unusable."""
    try:
        fd = files.open_regular(path)
        with open(fd, "rb") as f:
            data = f.read(MAX_BYTES + 1)
        value = safe_json.loads(data, max_bytes=MAX_BYTES, max_depth=MAX_DEPTH)
    except (OSError, safe_json.JSONLimitError):
        return None
    if not isinstance(value, dict) or value.get("format") != kind:
        return None
    return value


def save(path: Path, kind: str, body: dict[str, Any]) -> bool:
    """Replace ``path`` with ``body`` (plus its ``format``); False if the directory is not
    writable for us (a reader without write access still works, from memory)."""
    data = json.dumps({"format": kind, **body}, separators=(",", ":"), ensure_ascii=False).encode("utf-8")
    return save_bytes(path, data)


def save_bytes(path: Path, data: bytes) -> bool:
    """Replace ``path`` with ``data``, as ``save`` does."""
    tmp = path.with_name(f".{path.name}.{os.getpid()}.{secrets.token_hex(4)}.tmp")
    try:
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC | os.O_NOFOLLOW, FILE_MODE)
    except OSError:
        return False
    try:
        with open(fd, "wb") as f:
            os.fchmod(f.fileno(), FILE_MODE)  # the umask would drop the group's write bit
            f.write(data)
        os.replace(tmp, path)
    except OSError:
        with contextlib.suppress(OSError):
            tmp.unlink()
        return False
    return True
