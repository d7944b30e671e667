"""``python -m console.runbook [FILE]``: check a profile; every problem as FILE:LINE: key: message.

Exit 0 when it loads, 2 when it does not (a bad profile is bad input, as a bad config).
Until the console's own ``config validate`` reads profiles, this is how to check one.
"""

from __future__ import annotations

import sys

from console.runbook.load import DEFAULT_PROFILE, ProfileError, load_profile


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    if len(args) > 1 or (args and args[0].startswith("-")):
        print("usage: python -m console.runbook [PROFILE.toml]", file=sys.stderr)
        return 2
    path = args[0] if args else str(DEFAULT_PROFILE)
    try:
        profile = load_profile(path)
    except ProfileError as exc:
        for problem in exc.problems:
            print(problem, file=sys.stderr)
        print(f"{len(exc.problems)} problem(s): the profile cannot be used", file=sys.stderr)
        return 2
    flags = ", ".join(f.env for f in profile.flags.flags)
    print(
        f"{path}: ok — {profile.info.service}: {len(profile.flags.flags)} flags ({flags}), "
        f"{len(profile.actions)} actions, {len(profile.matrix)} matrix rows, {len(profile.validations)} validations, "
        f"{len(profile.troubleshooting)} troubleshooting issues, {len(profile.checklist)} checklist items, "
        f"{len(profile.scenarios)} drill scenarios"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
