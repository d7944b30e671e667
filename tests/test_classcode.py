"""The dataclass code cache (console/classcode.py): the real entry point writes it once and
then compiles nothing; what it holds never changes what a class does; a cache someone else
could have written, or a corrupt one, is not used; PYTHONDONTWRITEBYTECODE writes nothing."""

from __future__ import annotations

import marshal
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

CLASSES = textwrap.dedent(
    """
    import dataclasses, sys
    from console import classcode
    classcode.install()

    @dataclasses.dataclass(frozen=True)
    class Point:
        x: int
        y: int = 2

    p = Point(1)
    try:
        p.x = 5
        frozen = "no"
    except dataclasses.FrozenInstanceError:
        frozen = "yes"
    print(repr(p), p == Point(1, 2), p == Point(1, 3), hash(p) == hash(Point(1)), frozen)
    print("compiled" if classcode._added else "cached", len(classcode._codes))
    """
)
# The same class with a field more: its methods' text differs, so nothing cached applies.
CHANGED = CLASSES.replace("    y: int = 2\n", "    y: int = 2\n    z: str = 'z'\n").replace(
    "print(repr(p)", "print(repr(Point(1, 2, 'q')), repr(p)"
)


def cache_env(cache: Path, **extra: str) -> dict[str, str]:
    """Ours, with the cache in ``cache`` and bytecode (so the cache) allowed to be written."""
    environ = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
    environ.update(XDG_CACHE_HOME=str(cache), **extra)
    return environ


def run(code: str, cache: Path, *, check: bool = True, **env: str) -> list[str]:
    environ = cache_env(cache, **env)
    done = subprocess.run([sys.executable, "-c", code], env=environ, capture_output=True, text=True, check=check)
    return done.stdout.splitlines()


def cache_file(cache: Path) -> Path:
    files = list((cache / "rollback-console").glob("dataclass-code.*.marshal"))
    assert len(files) == 1, files
    return files[0]


def test_a_class_behaves_the_same_compiled_or_cached_and_a_changed_class_compiles_afresh(tmp_path: Path) -> None:
    first = run(CLASSES, tmp_path)
    assert first[0] == "Point(x=1, y=2) True False True yes"
    assert first[1].startswith("compiled")
    path = cache_file(tmp_path)
    assert path.stat().st_mode & 0o777 == 0o600 and path.parent.stat().st_mode & 0o777 == 0o700
    second = run(CLASSES, tmp_path)
    assert second[0] == first[0], "the cached methods do what the compiled ones did"
    assert second[1].startswith("cached")
    changed = run(CHANGED, tmp_path)
    assert changed[0] == "Point(x=1, y=2, z='q') Point(x=1, y=2, z='z') True False True yes"
    assert changed[1].startswith("compiled"), "new text, new code: the old class's is not used"


def _poisoned(tmp_path: Path) -> Path:
    """A cache whose every entry runs a print instead of the method it stands for."""
    run(CLASSES, tmp_path)
    path = cache_file(tmp_path)
    codes = marshal.loads(path.read_bytes())
    evil = compile("def __create_fn__(*a, **k):\n print('POISON')\n return lambda *a, **k: None\n", "<x>", "exec")
    path.write_bytes(marshal.dumps(dict.fromkeys(codes, evil)))
    return path


def test_a_cache_others_could_write_is_not_run(tmp_path: Path) -> None:
    path = _poisoned(tmp_path)
    # The trust is the user's own file, as with their bytecode: theirs alone is used...
    assert "POISON" in run(CLASSES, tmp_path, check=False)  # the methods it stands in for: not there
    # ...and one that others could have written is not, and is replaced by the user's own.
    path.chmod(0o666)
    out = run(CLASSES, tmp_path)
    assert "POISON" not in "\n".join(out)
    assert out == ["Point(x=1, y=2) True False True yes", "compiled 6"]
    assert path.stat().st_mode & 0o777 == 0o600
    assert run(CLASSES, tmp_path) == ["Point(x=1, y=2) True False True yes", "cached 6"]


@pytest.mark.parametrize("content", [b"", b"\x00garbage", marshal.dumps([1, 2, 3]), marshal.dumps({"a": 1})])
def test_a_corrupt_cache_is_compiled_over(tmp_path: Path, content: bytes) -> None:
    first = run(CLASSES, tmp_path)
    path = cache_file(tmp_path)
    path.write_bytes(content)
    out = run(CLASSES, tmp_path)
    assert out[0] == first[0] and out[1].startswith("compiled")
    assert run(CLASSES, tmp_path)[1].startswith("cached"), "written afresh"


def test_no_cache_is_written_where_bytecode_may_not_be(tmp_path: Path) -> None:
    out = run(CLASSES, tmp_path, PYTHONDONTWRITEBYTECODE="1")
    assert out[0] == "Point(x=1, y=2) True False True yes"
    assert not (tmp_path / "rollback-console").exists()


def test_the_real_entry_point_writes_it_once_then_compiles_nothing(tmp_path: Path) -> None:
    """`rollback-console --version` and a real command: the second run leaves the file as it was."""
    config = tmp_path / "none.toml"
    env = cache_env(tmp_path, ROLLBACK_CONSOLE_CONFIG=str(config))
    argv = [sys.executable, "-m", "console", "demo", "--help"]
    subprocess.run(argv, env=env, capture_output=True, check=True)
    path = cache_file(tmp_path)
    before = path.stat()
    subprocess.run(argv, env=env, capture_output=True, check=True)
    after = path.stat()
    assert (after.st_ino, after.st_mtime_ns) == (before.st_ino, before.st_mtime_ns), "nothing new was compiled"


WORKER = textwrap.dedent(
    """
    import marshal, select, sys
    from console import classcode
    classcode.install()
    from console.config import load_config
    from console.probes.worker import FrameReader, ProbeWorker
    worker = ProbeWorker.fork(load_config(sys.argv[1]))
    reader, got = FrameReader(), []
    while not got:
        select.select([worker.out], [], [], 1.0)
        data = worker.read()
        assert data != b"", "the worker went away"
        got.extend(reader.feed(data or b""))
    worker.close()
    saved = marshal.loads(classcode.cache_path().read_bytes())
    print(len(classcode._codes), len(saved), len(set(saved) - set(classcode._codes)))
    """
)


def test_the_probe_worker_keeps_what_its_rounds_compiled(make_simulation, tmp_path: Path) -> None:
    """The worker (forked, ended with os._exit) saves the classes its first round loaded (the
    HTTP and database clients): the dashboard waits for that round at every start."""
    sim = make_simulation(environments=("staging",))
    env = cache_env(tmp_path)
    done = subprocess.run(
        [sys.executable, "-c", WORKER, str(sim.config_path)], env=env, capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stderr
    console_has, saved, only_worker = map(int, done.stdout.split())
    assert only_worker > 0 and saved == console_has + only_worker, done.stdout


def test_a_fifo_or_a_link_in_its_place_is_never_waited_on_or_followed(tmp_path: Path) -> None:
    run(CLASSES, tmp_path)
    path = cache_file(tmp_path)
    real = path.with_name("elsewhere")
    path.rename(real)
    path.symlink_to(real)
    assert run(CLASSES, tmp_path)[1].startswith("compiled"), "a link is not followed"
    path.unlink(missing_ok=True)
    os.mkfifo(path)
    environ = cache_env(tmp_path)
    done = subprocess.run([sys.executable, "-c", CLASSES], env=environ, capture_output=True, text=True, timeout=60)
    assert done.returncode == 0 and done.stdout.splitlines()[1].startswith("compiled"), done
