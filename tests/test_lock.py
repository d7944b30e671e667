"""The per-environment lock, against real shells: LocalTransport, separate OS processes,
and a real OpenSSH server on loopback standing in for a second bastion."""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import stat
import sys
import tempfile
import textwrap
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest

from console.config.model import Environment, Host, SecretRef
from console.lock import (
    BrokenLock,
    EnvironmentLock,
    LockError,
    LockHeld,
    LockHolder,
    LockLost,
)
from console.transport import LocalTransport, Transport, connect
from tests.fixtures_ssh import SSHServer

ROOT = Path(__file__).resolve().parent.parent
ENV = "production"


@pytest.fixture
async def local() -> AsyncIterator[Transport]:
    transport = LocalTransport(Host(name="local"))
    yield transport
    await transport.close()


def holder(user: str, run_id: str, *, bastion: str = "bastion-1", client: str | None = "10.0.0.5") -> LockHolder:
    return LockHolder(user=user, ssh_client=client, bastion=bastion, pid=4242, run_id=run_id)


def make_lock(
    transport: Transport, lock_dir: Path | str, user: str = "alice", run_id: str = "r-1", **kw
) -> EnvironmentLock:
    return EnvironmentLock(ENV, str(lock_dir), transport, holder(user, run_id), **kw)


def lock_path(lock_dir: Path) -> Path:
    return lock_dir / f"rollback-console-{ENV}.lock"


async def test_acquire_writes_owner_and_release_removes_it(local: Transport, tmp_path: Path) -> None:
    lock = make_lock(local, tmp_path)
    info = await lock.acquire()
    assert (info.user, info.bastion, info.ssh_client, info.run_id, info.pid) == (
        "alice",
        "bastion-1",
        "10.0.0.5",
        "r-1",
        4242,
    )
    assert info.complete and not info.stale and info.host == "local"
    owner_file = lock_path(tmp_path) / "owner.json"
    owner = json.loads(owner_file.read_text())
    assert owner["user"] == "alice" and owner["run_id"] == "r-1" and owner["environment"] == ENV
    assert owner["token"] == lock.token
    # Other operators' accounts on the host must be able to read who holds it.
    assert stat.S_IMODE(owner_file.stat().st_mode) == 0o644
    assert abs(info.acquired_at - time.time()) < 5

    assert await lock.release() is True
    assert await lock.inspect() is None
    assert os.listdir(tmp_path) == []  # nothing left behind, no temp or "gone" directories
    assert await lock.release() is False  # releasing twice is harmless


async def test_second_holder_is_refused_with_who_and_since_when(local: Transport, tmp_path: Path) -> None:
    first = make_lock(local, tmp_path, "alice", "r-1")
    second = EnvironmentLock(ENV, str(tmp_path), local, holder("bob", "r-2", bastion="bastion-2", client="10.0.0.9"))
    await first.acquire()
    with pytest.raises(LockHeld) as caught:
        await second.acquire()
    message = str(caught.value)
    for part in ("'production' is locked", "alice@bastion-1", "ssh client 10.0.0.5", "run r-1", "UTC", "s ago"):
        assert part in message, (part, message)
    assert str(lock_path(tmp_path)) in message and "on local" in message
    assert "STALE" not in message and "talk to alice" in message
    assert caught.value.info.user == "alice" and not caught.value.info.stale
    assert second.token is None
    await first.release()
    await second.acquire()  # free again: the second one gets it
    await second.release()


async def test_the_same_lock_object_cannot_take_it_twice(local: Transport, tmp_path: Path) -> None:
    lock = make_lock(local, tmp_path)
    await lock.acquire()
    with pytest.raises(LockError, match="already holds"):
        await lock.acquire()
    await lock.release()


async def test_old_dead_holder_reads_in_minutes_and_stale(local: Transport, tmp_path: Path) -> None:
    lock = make_lock(local, tmp_path)
    await lock.acquire()
    # That console died 12 minutes ago: its acquisition time and last heartbeat are that old.
    owner_file = lock_path(tmp_path) / "owner.json"
    owner = json.loads(owner_file.read_text())
    then = time.time() - 12 * 60 - 5
    owner["acquired_at"] = then
    owner_file.write_text(json.dumps(owner))
    os.utime(owner_file, (then, then))

    other = make_lock(local, tmp_path, "bob", "r-2")
    with pytest.raises(LockHeld) as caught:
        await other.acquire()
    message = str(caught.value)
    assert "12 min ago" in message and "last heartbeat 12 min ago" in message
    assert "STALE" in message and "120 s" in message and "not broken automatically" in message
    assert caught.value.info.stale
    assert lock_path(tmp_path).is_dir()  # recognised, never broken by itself


async def test_exactly_one_of_many_concurrent_acquires_wins(local: Transport, tmp_path: Path) -> None:
    # A separate OS process joins the race, like a console on another bastion.
    script = textwrap.dedent(
        """
        import asyncio, os, sys
        from console.config.model import Host
        from console.lock import EnvironmentLock, LockHeld, LockHolder
        from console.transport import LocalTransport

        async def main():
            holder = LockHolder("carol", None, "bastion-3", os.getpid(), "r-proc")
            lock = EnvironmentLock("production", sys.argv[1], LocalTransport(Host(name="local")), holder)
            print("ready", flush=True)
            sys.stdin.readline()
            try:
                await lock.acquire()
                print("won", flush=True)
            except LockHeld:
                print("held", flush=True)
            sys.stdin.readline()
            await lock.release()

        asyncio.run(main())
        """
    )
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-c",
        script,
        str(tmp_path),
        stdin=asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.PIPE,
        cwd=ROOT,
    )
    assert proc.stdin and proc.stdout
    try:
        assert (await asyncio.wait_for(proc.stdout.readline(), 10)).strip() == b"ready"
        locks = [make_lock(local, tmp_path, f"user{i}", f"r-{i}") for i in range(10)]

        async def attempt(lock: EnvironmentLock) -> bool:
            try:
                await lock.acquire()
                return True
            except LockHeld:
                return False

        proc.stdin.write(b"go\n")
        await proc.stdin.drain()
        results = await asyncio.gather(*(attempt(lock) for lock in locks))
        other = (await asyncio.wait_for(proc.stdout.readline(), 10)).strip()
        assert other in (b"won", b"held")
        winners = sum(results) + (other == b"won")
        assert winners == 1, (results, other)

        info = await locks[0].inspect()
        assert info is not None
        expected = (
            "carol"
            if other == b"won"
            else next(lock.holder.user for lock, won in zip(locks, results, strict=True) if won)
        )
        assert info.user == expected
        for lock, won in zip(locks, results, strict=True):
            assert (lock.token is not None) == won
            if won:
                await lock.release()
    finally:
        proc.stdin.write(b"done\n")
        await proc.stdin.drain()
        await asyncio.wait_for(proc.wait(), 10)
    assert await make_lock(local, tmp_path).inspect() is None


async def test_stale_after_threshold_and_heartbeat_freshens(local: Transport, tmp_path: Path) -> None:
    first = make_lock(local, tmp_path, stale_after_s=0.3)
    watcher = make_lock(local, tmp_path, "bob", "r-2", stale_after_s=0.3)
    await first.acquire()
    info = await watcher.inspect()
    assert info is not None and not info.stale
    await asyncio.sleep(0.45)
    info = await watcher.inspect()
    assert info is not None and info.stale and info.silence_s > 0.3
    with pytest.raises(LockHeld, match="STALE"):
        await watcher.acquire()
    assert lock_path(tmp_path).is_dir()  # stale is reported, not broken

    await first.heartbeat()
    info = await watcher.inspect()
    assert info is not None and not info.stale
    assert info.age_s >= 0.45  # the acquisition time did not move, only the heartbeat
    await first.release()


async def test_break_lock_returns_what_it_broke_and_old_holder_keeps_off(local: Transport, tmp_path: Path) -> None:
    alice = make_lock(local, tmp_path, "alice", "r-1", stale_after_s=0.2)
    bob = make_lock(local, tmp_path, "bob", "r-2", stale_after_s=0.2)
    await alice.acquire()
    await asyncio.sleep(0.3)

    broken = await bob.break_lock("alice's console crashed at 14:02; checked her run is gone")
    assert isinstance(broken, BrokenLock)
    assert broken.info.user == "alice" and broken.info.run_id == "r-1" and broken.info.stale
    assert broken.broken_by.user == "bob" and broken.reason.startswith("alice's console crashed")
    record = broken.to_dict()
    assert record["lock"]["user"] == "alice" and record["broken_by"]["user"] == "bob" and "token" not in record["lock"]
    assert "alice@bastion-1" in broken.describe() and "bob@bastion-1" in broken.describe()
    assert await bob.inspect() is None

    await bob.acquire()
    # Alice's console comes back: its release must not delete Bob's lock...
    assert await alice.release() is False
    info = await bob.inspect()
    assert info is not None and info.user == "bob" and info.token == bob.token
    # ...and its heartbeat tells it the lock is gone, and who has it now.
    alice.token = broken.info.token
    with pytest.raises(LockLost, match="now held by bob@bastion-1"):
        await alice.heartbeat()
    assert (await bob.inspect()) is not None
    assert await bob.release() is True
    assert sorted(os.listdir(tmp_path)) == []


async def test_break_lock_guards(local: Transport, tmp_path: Path) -> None:
    alice = make_lock(local, tmp_path, "alice", "r-1")
    bob = make_lock(local, tmp_path, "bob", "r-2")
    assert await bob.break_lock("nothing there") is None
    with pytest.raises(LockError, match="needs a reason"):
        await bob.break_lock("  ")
    seen = await alice.acquire()
    await alice.release()
    carol = make_lock(local, tmp_path, "carol", "r-3")
    await carol.acquire()
    # Bob looked at Alice's lock, but it changed hands since: nothing is broken.
    with pytest.raises(LockError, match=r"changed hands since you looked \(now: carol@bastion-1"):
        await bob.break_lock("alice's run looks dead", expected_token=seen.token)
    assert (await bob.inspect()).user == "carol"  # type: ignore[union-attr]
    broken = await bob.break_lock("carol's run is dead", expected_token=carol.token)
    assert broken is not None and broken.info.user == "carol"
    assert await carol.release() is False


async def test_half_taken_lock_reads_as_being_taken_then_stale(local: Transport, tmp_path: Path) -> None:
    # A console that died between mkdir and writing owner.json.
    lock_path(tmp_path).mkdir()
    lock = make_lock(local, tmp_path, stale_after_s=60)
    with pytest.raises(LockHeld, match="being locked by another console right now"):
        await lock.acquire()
    old = time.time() - 600
    os.utime(lock_path(tmp_path), (old, old))
    with pytest.raises(LockHeld) as caught:
        await lock.acquire()
    assert "owner.json missing" in str(caught.value) and "STALE" in str(caught.value)
    broken = await lock.break_lock("left half-taken by a crash")
    assert broken is not None and not broken.info.complete
    await lock.acquire()
    await lock.release()


async def test_held_heartbeats_and_releases_on_exception(local: Transport, tmp_path: Path) -> None:
    lock = make_lock(local, tmp_path, stale_after_s=0.3, heartbeat_interval_s=0.05)
    watcher = make_lock(local, tmp_path, "bob", "r-2", stale_after_s=0.3)

    class Boom(Exception):
        pass

    with pytest.raises(Boom):
        async with lock.held():
            await asyncio.sleep(0.6)
            info = await watcher.inspect()
            assert info is not None and not info.stale  # kept fresh by the heartbeat task
            raise Boom
    assert await watcher.inspect() is None
    assert lock.token is None and lock.release_error is None


async def test_held_releases_on_cancellation(local: Transport, tmp_path: Path) -> None:
    lock = make_lock(local, tmp_path, heartbeat_interval_s=0.05)
    inside = asyncio.Event()

    async def run() -> None:
        async with lock.held():
            inside.set()
            await asyncio.sleep(60)

    task = asyncio.create_task(run())
    await asyncio.wait_for(inside.wait(), 5)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert await make_lock(local, tmp_path).inspect() is None


async def test_held_notices_a_broken_lock_and_leaves_the_new_holders(local: Transport, tmp_path: Path) -> None:
    lost: list[str] = []
    alice = make_lock(local, tmp_path, heartbeat_interval_s=0.05)
    bob = make_lock(local, tmp_path, "bob", "r-2")
    async with alice.held(on_lost=lost.append):
        await bob.break_lock("testing a break during a run")
        await bob.acquire()
        for _ in range(100):
            if lost:
                break
            await asyncio.sleep(0.02)
    assert lost and "broken by someone else" in lost[0] and "bob@bastion-1" in lost[0]
    assert alice.lost == lost[0]
    info = await bob.inspect()
    assert info is not None and info.user == "bob"
    await bob.release()


async def test_missing_lock_dir_names_host_and_path(local: Transport, tmp_path: Path) -> None:
    missing = tmp_path / "no" / "such"
    with pytest.raises(LockError) as caught:
        await make_lock(local, missing).acquire()
    message = str(caught.value)
    assert f"lock_dir {missing} does not exist on local" in message and "environments.production.lock_dir" in message


async def test_lock_dir_that_is_a_file(local: Transport, tmp_path: Path) -> None:
    not_dir = tmp_path / "file"
    not_dir.write_text("x")
    with pytest.raises(LockError, match=f"lock_dir {not_dir} on local is not a directory"):
        await make_lock(local, not_dir).acquire()


async def test_relative_lock_dir_is_refused(local: Transport) -> None:
    with pytest.raises(LockError, match="must be an absolute path on local"):
        await make_lock(local, "var/lock").acquire()


async def test_lock_dir_under_home_is_resolved_on_the_host(
    local: Transport, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("HOME", str(tmp_path))
    (tmp_path / "locks").mkdir()
    lock = make_lock(local, "~/locks")
    await lock.acquire()
    assert (tmp_path / "locks" / f"rollback-console-{ENV}.lock" / "owner.json").is_file()
    await lock.release()


@pytest.fixture
def read_only_dir() -> Iterator[Path]:
    """A directory the test's lock user cannot write (root ignores modes: see the test)."""
    path = Path(tempfile.mkdtemp(prefix="rollback-console-ro-", dir="/tmp"))
    path.chmod(0o555)
    try:
        yield path
    finally:
        path.chmod(0o755)
        shutil.rmtree(path, ignore_errors=True)


async def test_unwritable_lock_dir_names_host_path_and_user(local: Transport, read_only_dir: Path) -> None:
    if os.geteuid() != 0:
        with pytest.raises(LockError) as caught:
            await make_lock(local, read_only_dir).acquire()
        message = str(caught.value)
    else:
        # Root may write anywhere, so take the lock as an unprivileged user in another process.
        setpriv = shutil.which("setpriv")
        assert setpriv, "needs setpriv (util-linux) to drop root for this test"
        script = textwrap.dedent(
            """
            import asyncio, sys
            from console.config.model import Host
            from console.lock import EnvironmentLock, LockError, LockHolder
            from console.transport import LocalTransport

            async def main():
                lock = EnvironmentLock("production", sys.argv[1], LocalTransport(Host(name="local")),
                                       LockHolder.current("r-x"))
                try:
                    await lock.acquire()
                    print("acquired")
                except LockError as exc:
                    print(exc)

            asyncio.run(main())
            """
        )
        proc = await asyncio.create_subprocess_exec(
            setpriv,
            "--reuid=65534",
            "--regid=65534",
            "--clear-groups",
            sys.executable,
            "-c",
            script,
            str(read_only_dir),
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
            cwd="/",
            env={
                "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
                "PYTHONPATH": str(ROOT),
                "PYTHONDONTWRITEBYTECODE": "1",
            },
        )
        out, err = await asyncio.wait_for(proc.communicate(), 20)
        assert proc.returncode == 0, err.decode()
        message = out.decode().strip()
    assert f"cannot take the rollback lock {read_only_dir}/rollback-console-{ENV}.lock on local" in message, message
    assert "Permission denied" in message and f"lock_dir {read_only_dir} must be writable by" in message


async def test_for_environment_expands_host_placeholders(local: Transport, tmp_path: Path) -> None:
    (tmp_path / "h1").mkdir()
    env = Environment(
        name="staging",
        kind="staging",
        hosts=(Host(name="local"),),
        api_url="http://127.0.0.1:1",
        channel_id=1,
        env_file="/dev/null",
        restart_command="true",
        pid_command="true",
        login_email="x@example.com",
        password=SecretRef(env="NOPE"),
        lock_dir=str(tmp_path / "{slot}"),
    )
    transport = LocalTransport(Host(name="local", vars=(("slot", "h1"),)))
    lock = EnvironmentLock.for_environment(env, transport, holder("alice", "r-1"), stale_after_s=5)
    assert lock.stale_after_s == 5
    await lock.acquire()
    assert (tmp_path / "h1" / "rollback-console-staging.lock").is_dir()
    await lock.release()


@pytest.mark.ssh
async def test_local_and_ssh_consoles_conflict_like_two_bastions(
    local: Transport, sshd: SSHServer, tmp_path: Path
) -> None:
    """Two consoles reaching the same host, one directly and one over SSH, share one lock."""
    remote = await connect(sshd.host())
    try:
        here = make_lock(local, tmp_path, "alice", "r-1")
        there = EnvironmentLock(
            ENV, str(tmp_path), remote, holder("bob", "r-2", bastion="bastion-2", client="10.0.0.9")
        )

        await here.acquire()
        with pytest.raises(LockHeld) as caught:
            await there.acquire()
        assert "alice@bastion-1" in str(caught.value) and "run r-1" in str(caught.value)
        assert f"on {remote.where}" in str(caught.value)
        await here.release()

        async with there.held():
            await there.heartbeat()
            with pytest.raises(LockHeld, match=r"bob@bastion-2 \(ssh client 10.0.0.9, run r-2"):
                await here.acquire()
        assert await here.inspect() is None

        # A deliberate break over SSH, then the old holder's release leaves the new lock alone.
        await there.acquire()
        broken = await here.break_lock("bob's bastion lost power")
        assert broken is not None and broken.info.user == "bob"
        await here.acquire()
        assert await there.release() is False
        assert (await there.inspect()).user == "alice"  # type: ignore[union-attr]
        await here.release()
        assert os.listdir(tmp_path) == []
    finally:
        await remote.close()
