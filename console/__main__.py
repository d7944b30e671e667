"""``python -m console`` and the ``rollback-console`` script.

``main()`` installs the signal handlers first thing; a Ctrl-C during the imports before
it (a few milliseconds) ends the same way as one after: quietly, with 130.
"""

import sys


def run() -> None:
    try:
        from console.cli import main
    except KeyboardInterrupt:
        sys.exit(130)
    sys.exit(main())


if __name__ == "__main__":
    run()
