"""``python -m console.profile [FILE]``: check a profile; every problem as FILE:LINE: key: message.

Exit 0 when it loads, 2 when it does not (a bad profile is bad input, as a bad config).
``rollback-console config validate PROFILE`` does the same.
"""

from __future__ import annotations

import sys

from console.profile.load import DEFAULT_PROFILE, ProfileError, describe_profile, load_profile


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    if len(args) > 1 or (args and args[0].startswith("-")):
        print("usage: python -m console.profile [PROFILE.toml]", file=sys.stderr)
        return 2
    path = args[0] if args else str(DEFAULT_PROFILE)
    try:
        profile = load_profile(path)
    except ProfileError as exc:
        for problem in exc.problems:
            print(problem, file=sys.stderr)
        print(f"{len(exc.problems)} problem(s): the profile cannot be used", file=sys.stderr)
        return 2
    print(f"{path}: ok — {describe_profile(profile)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
