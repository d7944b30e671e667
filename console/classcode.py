"""The code ``dataclasses`` generates, compiled once and kept between runs.

On CPython 3.11 and 3.12 every dataclass compiles its ``__init__``, ``__repr__``, ``__eq__``
(and, frozen, ``__setattr__``, ``__delattr__``, ``__hash__``) from source, one ``exec`` each:
about 450 functions for the CLI's imports and 540 for the console's (Textual's included),
a third of their import time. The source text fully decides the compiled code, so the code
is kept by its text in a per-user cache file: a class whose fields change has new text and
compiles afresh; nothing is ever run that its own text did not say.

Only for a process of our own (``rollback-console``, ``python -m console``), installed before
its imports. The cache is the user's own, like their bytecode: read only from a file of
theirs that no one else can write, written only where bytecode may be (not under
``PYTHONDONTWRITEBYTECODE``). Any trouble with it — missing, foreign, corrupt, unwritable —
means compiling as Python always does.
"""

from __future__ import annotations

import os
import stat
import sys
from pathlib import Path
from types import CodeType

MAX_ENTRIES = 20_000  # beyond this, a stale cache (many versions of our classes) starts afresh
MAX_BYTES = 64 << 20  # a bigger file is not ours: not read

_codes: dict[str, CodeType] = {}
_added = False
_path: Path | None = None


def cache_path() -> Path | None:
    """$XDG_CACHE_HOME/rollback-console (~/.cache/…), one file per bytecode format."""
    from importlib.util import MAGIC_NUMBER

    base = os.environ.get("XDG_CACHE_HOME") or (os.path.join(os.path.expanduser("~"), ".cache"))
    if not os.path.isabs(base):
        return None
    tag = sys.implementation.cache_tag or "python"
    return Path(base) / "rollback-console" / f"dataclass-code.{tag}.{MAGIC_NUMBER.hex()}.marshal"


def _load(path: Path) -> dict[str, CodeType]:
    import marshal

    try:
        # Non-blocking and not through a link: a FIFO planted there is never waited on.
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_NOFOLLOW | os.O_CLOEXEC)
        with open(fd, "rb") as fh:
            st = os.fstat(fd)
            if not stat.S_ISREG(st.st_mode) or st.st_size > MAX_BYTES:
                return {}
            if st.st_uid != os.getuid() or st.st_mode & 0o022:
                return {}  # code someone else could have written is not run
            loaded = marshal.loads(fh.read())
    except (OSError, ValueError, EOFError, TypeError):
        return {}
    if not isinstance(loaded, dict):
        return {}
    return {k: v for k, v in loaded.items() if isinstance(k, str) and isinstance(v, CodeType)}


def _exec(source: object, globals: dict | None = None, locals: dict | None = None) -> None:
    """``exec`` as ``dataclasses`` calls it, with its source compiled at most once."""
    global _added
    if type(source) is str:
        code = _codes.get(source)
        if code is None:
            # As exec(str) compiles it in dataclasses.py: no future flags of ours.
            code = _codes[source] = compile(source, "<string>", "exec", dont_inherit=True)
            _added = True
        source = code
    exec(source, globals, locals)


def save() -> None:
    """Write what was compiled this run (with what was read), atomically; quietly skipped
    where it cannot be."""
    if not _added or _path is None or sys.dont_write_bytecode:
        return
    import marshal

    tmp = _path.with_name(f"{_path.name}.{os.getpid()}.tmp")
    try:
        _path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        merged = {**_load(_path), **_codes}
        if len(merged) > MAX_ENTRIES:
            merged = dict(_codes)
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "wb") as fh:
            fh.write(marshal.dumps(merged))
        os.replace(tmp, _path)
    except (OSError, ValueError, KeyboardInterrupt):
        # KeyboardInterrupt: a stop signal while exiting; the command's end is decided, and
        # a cache is only a cache (no traceback from an exit handler, no temp file left).
        try:
            tmp.unlink()
        except OSError:
            pass


def install() -> None:
    """Route dataclasses' ``exec`` through the cache; saved at exit."""
    global _path
    import dataclasses

    if getattr(dataclasses, "exec", None) is _exec or sys.implementation.name != "cpython":
        return
    try:
        _path = cache_path()
    except (ImportError, OSError, RuntimeError):
        _path = None
    if _path is not None:
        _codes.update(_load(_path))
    # A module global shadows the builtin for dataclasses' one call of exec.
    dataclasses.exec = _exec  # type: ignore[attr-defined]
    import atexit

    atexit.register(save)
