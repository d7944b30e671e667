"""Runbooks as data: a service profile.

What the profile is. One TOML file (sample_configs/profiles/*.toml) holding everything a
runbook knows about one service: its feature flags (env names, log labels, the master
and what depends on it, how the service reads a value and how the console writes one);
how the service reports its flags in its log and how its process environment is read;
its health endpoints and which one tells the truth; the functional probe (login, the
request and its per-environment parameters, and JSON predicates that tell its modes and
failure shapes apart); memory bands; the decision matrix; the actions (flag rollbacks as
the flags they turn off, the code rollback by commit message, the database rollback by
table, columns, indexes and scripts); the validations; the troubleshooting issues (when
each applies, from facts the console can see, and its fix); the checklist; contacts,
escalation and authorization; drill scenarios. ``load_profile`` reads one and reports
every problem as ``FILE:LINE: key: message``, with the config's own reader.

What stays machinery. How to reach a host (SSH, ports, the lock), how to read a file or
a log on it (awk on the host, bounded reads), HTTP with its timeouts and bounded bodies,
the journal, write-ahead intents and undo, the engine and its steps, the screens. The
profile names *what* to look at and *what it means*; the code knows *how*. Where a
profile names machinery — a decision-matrix signal, a troubleshooting fact, a fix
placeholder, a validation check, checklist evidence, an action kind — it picks from
the words in vocabulary.py, and a new word there is new code.

Each environment names its profile (the config's `profile` key, else DEFAULT_PROFILE);
``profile_of(env)`` reads it on first use, once per process (the console reads its
environments' profiles before forking the probe worker, so the two share one read). Every
part of the runbook reads it: flags, probes, plans, the matrix, validations, troubleshooting,
the checklist, authorization, people and drills.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from console import lazy

if TYPE_CHECKING:
    from console.profile.load import (
        DEFAULT_PROFILE,
        PROFILE_DIR,
        ProfileError,
        load_profile,
        profile_at,
        profile_of,
        profile_path,
    )
    from console.profile.model import Action, Answer, Flag, FlagRules, Issue, Profile

# Read on first use (PEP 562): importing console.profile.model (the simulator's restart
# command, the env file parser) must not load the profile reader and the config with it.
_WHERE = {
    **dict.fromkeys(
        ("DEFAULT_PROFILE", "PROFILE_DIR", "ProfileError", "load_profile", "profile_at", "profile_of", "profile_path"),
        "load",
    ),
    **dict.fromkeys(("Action", "Answer", "Flag", "FlagRules", "Issue", "Profile"), "model"),
}


__all__ = [
    "DEFAULT_PROFILE",
    "PROFILE_DIR",
    "Action",
    "Answer",
    "Flag",
    "FlagRules",
    "Issue",
    "Profile",
    "ProfileError",
    "load_profile",
    "profile_at",
    "profile_of",
    "profile_path",
]

__getattr__, __dir__ = lazy.exports(__name__, _WHERE)
