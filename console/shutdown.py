"""Signals from the first instant: SIGTERM, SIGHUP and SIGINT stop a command cleanly.

``install()`` is the first thing ``main()`` does. From then on:

- SIGINT is Python's own: ``KeyboardInterrupt``, or inside ``asyncio.run`` the main task
  is cancelled first, so ``finally`` blocks and ``async with`` exits run.
- SIGTERM and SIGHUP do exactly what SIGINT does at that moment (they call the current
  SIGINT handler), so everything that cleans up after Ctrl-C cleans up after them too:
  simulator processes, the probe worker, temp dirs, locks. ``received()`` tells which
  signal it was; ``main()`` exits with 128 + its number.
- A command that gives a signal its own meaning registers a hook with ``on_stop``
  (the drill: SIGTERM ends and scores it; the console: it quits the app the way ``q``
  does). The hook is called instead of raising, from the main thread, between two
  bytecodes: it must only set a flag or schedule work (``loop.call_soon_threadsafe``).

A second SIGTERM or SIGHUP while the first is being handled is ignored, so cleanup is not
cut short; a second Ctrl-C is Python's and asyncio's (it interrupts).
"""

from __future__ import annotations

import _thread
import contextlib
import signal
import sys
from collections.abc import Callable, Iterator
from types import FrameType

STOP_SIGNALS = (signal.SIGTERM, signal.SIGHUP, signal.SIGINT)
Hook = Callable[[int], None]

_hooks: list[Hook] = []
_received: int | None = None
_installed = False


def install() -> None:
    """Handle SIGTERM and SIGHUP like SIGINT from now on (idempotent)."""
    global _installed
    if _installed:
        return
    for signum in (signal.SIGTERM, signal.SIGHUP):
        signal.signal(signum, _on_signal)
    if signal.getsignal(signal.SIGINT) in (signal.SIG_IGN, signal.SIG_DFL):
        signal.signal(signal.SIGINT, signal.default_int_handler)  # e.g. started in the background by a shell
    _installed = True


def received() -> int | None:
    """The first stop signal this process got, if any (SIGINT counts only through a hook)."""
    return _received


def exit_code(default: int = 130) -> int:
    """128 + the signal's number, as a shell reports a process a signal ended."""
    return 128 + _received if _received is not None else default


def describe() -> str:
    return signal.Signals(_received).name if _received is not None else "SIGINT"


def _on_signal(signum: int, frame: FrameType | None) -> None:
    global _received
    first = _received is None
    if first:
        _received = signum
    if _hooks:
        _hooks[-1](signum)
        return
    if not first:
        return  # already stopping: let the cleanup finish
    handler = signal.getsignal(signal.SIGINT)
    if callable(handler):
        handler(signal.SIGINT, frame)  # asyncio's (cancel the main task) or KeyboardInterrupt
    else:
        raise KeyboardInterrupt


def _on_sigint_hooked(signum: int, frame: FrameType | None) -> None:
    global _received
    if _received is None:
        _received = signum
    if _hooks:
        _hooks[-1](signum)


@contextlib.contextmanager
def on_stop(hook: Hook) -> Iterator[None]:
    """While inside, a stop signal (SIGINT too) calls ``hook(signum)`` instead of raising."""
    _hooks.append(hook)
    previous = signal.getsignal(signal.SIGINT)
    signal.signal(signal.SIGINT, _on_sigint_hooked)
    try:
        yield
    finally:
        _hooks.remove(hook)
        if not _hooks:
            signal.signal(signal.SIGINT, previous if callable(previous) else signal.default_int_handler)


def deliver_again() -> None:
    """A stop's KeyboardInterrupt raised inside a finalizer (a ``__del__``, a weakref
    callback) is lost: Python only reports it and runs on. Deliver the stop once more
    through the current SIGINT handler (which ends the command, or calls its hook). From
    another thread: called here, in the report of the lost one, it would be lost again."""
    if not sys.is_finalizing():
        # Not threading.Thread: its start() waits for the thread, and the stop would land there.
        _thread.start_new_thread(_thread.interrupt_main, ())


def consume() -> None:
    """The signal was the command's normal end (a drill's SIGTERM): exit as usual."""
    global _received
    _received = None
