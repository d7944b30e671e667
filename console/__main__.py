"""``python -m console`` and the ``rollback-console`` script.

``main()`` installs the signal handlers first thing; a Ctrl-C during the imports before
it (a few milliseconds) ends the same way as one after: quietly, with 130.
"""

import sys


def run() -> None:
    from console import collector

    collector.hold()  # until the command's modules are loaded (console/collector.py)
    try:
        from console import classcode

        classcode.install()  # before the imports that define dataclasses
        from console.cli import main
    except KeyboardInterrupt:
        sys.exit(130)
    except RuntimeError as exc:  # a Ctrl-C while a class was being defined (see cli.interrupted)
        if isinstance(exc.__cause__, KeyboardInterrupt):
            sys.exit(130)
        raise
    code = main()
    leave(code)


def leave(code: int) -> None:
    """Exit with ``code`` without the interpreter's teardown of every module and object one
    by one (tens of milliseconds after a short command, longer than some commands take).
    What exit must still do is done first: the atexit handlers (log handlers, finalizers,
    temp dirs) and the output flushed. Should another thread still run, the output not
    flush, or a profiler or debugger be attached (it writes its results at exit), the
    ordinary exit does it all as before."""
    import atexit
    import os
    import threading

    others = [t for t in threading.enumerate() if t is not threading.main_thread() and not t.daemon and t.is_alive()]
    if others or sys.gettrace() is not None or sys.getprofile() is not None:
        sys.exit(code)
    try:
        sys.stdout.flush()
        sys.stderr.flush()
    except (OSError, ValueError):
        sys.exit(code)  # the ordinary exit reports it as it always did
    atexit._run_exitfuncs()
    try:
        sys.stdout.flush()
        sys.stderr.flush()
    except (OSError, ValueError):
        pass
    os._exit(code & 0xFF)


if __name__ == "__main__":
    run()
