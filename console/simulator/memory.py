"""Fault ``memory_mb``: real resident memory, grown gradually and given back on release.

Anonymous mmaps, each page written once, so the kernel really backs them (RSS grows),
and munmap on release returns them at once (malloc'd buffers might stay in the heap).
"""

from __future__ import annotations

import mmap
import os

CHUNK = 16 * 1024 * 1024
PAGE = mmap.PAGESIZE
RAMP_S = 2.0  # how long growing to the target takes, roughly


def rss_mb() -> float:
    """This process's resident memory in MB (VmRSS)."""
    with open(f"/proc/{os.getpid()}/status", encoding="ascii") as fh:
        for line in fh:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return 0.0


class Ballast:
    def __init__(self) -> None:
        self._chunks: list[mmap.mmap] = []

    @property
    def mb(self) -> float:
        return len(self._chunks) * CHUNK / (1024 * 1024)

    def step(self, target_rss_mb: float, interval_s: float) -> None:
        """Move toward ``target_rss_mb`` of total RSS: one tick of a ramp lasting about RAMP_S."""
        if target_rss_mb <= 0:
            self.release()
            return
        other = rss_mb() - self.mb  # what the process holds besides the ballast
        want_chunks = max(0, int((target_rss_mb - other) * 1024 * 1024 // CHUNK))
        have = len(self._chunks)
        if want_chunks < have:
            for m in self._chunks[want_chunks:]:
                m.close()
            del self._chunks[want_chunks:]
            return
        per_tick = max(1, int(want_chunks * interval_s / RAMP_S) + 1)
        for _ in range(min(per_tick, want_chunks - have)):
            m = mmap.mmap(-1, CHUNK)
            m[::PAGE] = b"\x5a" * (CHUNK // PAGE)  # touch every page
            self._chunks.append(m)

    def release(self) -> None:
        for m in self._chunks:
            m.close()
        self._chunks.clear()
