"""Load and validate a service profile, reporting every problem as ``FILE:LINE: key: message``.

The config's table reader does the reading (console/config/reader.py): typed getters that
record problems with the key's line, unknown keys with "did you mean". This module reads
the service's own parts (profile, flags, log, process); load_probe.py the health endpoints
and the probe; load_rules.py the runbook's tables; load_drills.py the drills. Cross-references
(a mode naming a flag, a matrix row naming an action) are checked once everything they may
name has been read.
"""

from __future__ import annotations

import functools
import os
import re
import threading
from pathlib import Path
from typing import Any

from console.config import load as config_load
from console.config.load import _Loader
from console.config.locate import Path as KeyPath
from console.config.locate import locate
from console.config.model import Environment
from console.config.reader import ConfigError, Problem, _dotted, _non_empty, _Table
from console.profile import checks, patterns
from console.profile.checks import FLAG_ID, unique, unknown
from console.profile.load_probe import ProbeReader
from console.profile.load_rules import RulesReader
from console.profile.model import (
    Flag,
    FlagRules,
    JsonLog,
    LogFormat,
    ProcessSpec,
    Profile,
    ServiceInfo,
)
from console.profile.patterns import FlagLine, PlainLine, TemplateError, item_line
from console.profile.vocabulary import FORMAT

PROFILE_DIR = Path(__file__).resolve().parent.parent.parent / "sample_configs" / "profiles"
DEFAULT_PROFILE = PROFILE_DIR / "analyticbot-phase4.toml"
MIN_FLAGS, MAX_FLAGS = 2, 6  # what the screens lay out at 80×24


SHORT_LABEL = 7  # a flag's column on the dashboard at 80×24


def _short_label(value: str) -> str | None:
    if not value.strip():
        return "is empty"
    if len(value) > SHORT_LABEL:
        return f"is {len(value)} characters; a column holds {SHORT_LABEL}"
    return None


class ProfileError(ConfigError):
    """The profile cannot be used; ``problems`` lists every reason (file, line, key)."""


class _ProfileLoader(ProbeReader, RulesReader, _Loader):
    @functools.cached_property
    def lines(self) -> list[str]:
        """The text's lines, split only once a problem needs one (as ``index``)."""
        return self.text.split("\n")

    def problem(self, path: KeyPath, message: str) -> None:
        """As the config's, but an item of a list written over several lines gets its own line."""
        line = locate(self.index, path)
        known = next((i for i in range(len(path), 0, -1) if tuple(path[:i]) in self.index), 0)
        if line and known < len(path) and isinstance(path[known], int):
            line = item_line(self.lines, line, path[known]) or line
        self.problems.append(Problem(self.file, line, _dotted(path), message))

    def load(self, data: dict[str, Any]) -> Profile | None:  # type: ignore[override]
        root = _Table(self, data, ())
        info = self._info(root)
        flags = self._flags(root)
        self.flag_ids = flags.ids if flags else ()
        self.has_dependencies = bool(flags and any(f.depends_on for f in flags.flags))
        probe = self._probe(root)
        log = self._log(root)
        process = self._process(root)
        health = self._health(root)
        self.both_health = bool(health and health.liveness and health.readiness)
        rules = self.rules(root)
        root.finish()
        if self.problems:
            return None
        assert info and flags and log and health and probe and rules
        return Profile(
            path=self.file, info=info, flags=flags, log=log, process=process, health=health, probe=probe, **rules
        )

    # --- [profile] ---------------------------------------------------------------------------

    def _info(self, root: _Table) -> ServiceInfo | None:
        t = checks.required_table(root, "profile", "format = 1, id, title and service")
        if t is None:
            return None
        fmt = t.get("format", int, check=lambda v: None if v == FORMAT else f"this console reads format {FORMAT}")
        info = ServiceInfo(
            id=t.get("id", str, check=checks.id_check()) or "",
            title=t.get("title", str, check=_non_empty) or "",
            service=t.get("service", str, check=_non_empty) or "",
            feature=t.get("feature", str, ""),
            runbook=t.get("runbook", str, ""),
            version=t.get("version", str, ""),
        )
        t.finish()
        return info if fmt is not None else None

    # --- [flags] -----------------------------------------------------------------------------

    def _flags(self, root: _Table) -> FlagRules | None:
        t = checks.required_table(root, "flags", "[[flags.flag]] tables (id, env, label), 2 to 6 of them")
        if t is None:
            return None
        read = t.table("read")
        missing, on_words, case_sensitive = True, ["true"], False
        if read:
            missing = read.get("missing", bool, True)
            on_words = read.get("on_words", list, ["true"], checks.words) or ["true"]
            case_sensitive = read.get("case_sensitive", bool, False)
            read.finish()
        write = t.table("write")
        write_on, write_off, keep_case = "true", "false", False
        if write:
            write_on = write.get("on", str, "true", _non_empty)
            write_off = write.get("off", str, "false", _non_empty)
            keep_case = write.get("keep_case", bool, False)
        master = t.get("master", str, None)
        items = t.tables("flag")
        if items is None:
            t.problem("flag", "no flag is defined: add [[flags.flag]] with id, env and label (2 to 6 of them)")
            items = []
        elif not MIN_FLAGS <= len(items) <= MAX_FLAGS:
            t.problem("flag", f"a profile has {MIN_FLAGS} to {MAX_FLAGS} flags; this one has {len(items)}")
        flags: list[Flag] = []
        for ft in items:
            flag = Flag(
                id=ft.get("id", str, check=checks.id_check(FLAG_ID)) or "",
                env=ft.get("env", str, check=checks.variable) or "",
                label=ft.get("label", str, check=_non_empty) or "",
                short=ft.get("short", str, None, _short_label),
                description=ft.get("description", str, ""),
                depends_on=ft.get("depends_on", str, None),
                missing=ft.get("missing", bool, missing),
            )
            ft.finish()
            flags.append(flag)
        unique(items, flags, "id")
        unique(items, flags, "env")
        unique(items, flags, "label")
        rules = FlagRules(tuple(flags), master, tuple(on_words), case_sensitive, write_on, write_off, keep_case)
        self._dependencies(t, items, rules)
        if write:
            for key, value, want in (("on", write_on, True), ("off", write_off, False)):
                if value and rules.means_on(value) != want:
                    write.problem(
                        key,
                        f"the service would read {value!r} as {'on' if not want else 'off'} "
                        f"(on_words: {', '.join(on_words)})",
                    )
            write.finish()
        t.finish()
        return rules

    def _dependencies(self, t: _Table, items: list[_Table], rules: FlagRules) -> None:
        ids = [f.id for f in rules.flags if f.id]
        by_id = {f.id: f for f in rules.flags}
        for ft, f in zip(items, rules.flags, strict=True):
            if f.depends_on is None:
                continue
            if f.depends_on == f.id:
                ft.problem("depends_on", "a flag cannot depend on itself")
            elif f.depends_on not in by_id:
                ft.problem("depends_on", unknown(f.depends_on, "a flag", ids))
        reported: set[str] = set()
        for ft, f in zip(items, rules.flags, strict=True):
            if f.depends_on == f.id:
                continue  # said above
            chain, at = [f.id], by_id.get(f.depends_on or "")
            while at is not None and at.id not in chain:
                chain.append(at.id)
                at = by_id.get(at.depends_on or "")
            if at is not None and at.id == f.id and f.id not in reported:
                reported.update(chain)
                ft.problem("depends_on", f"dependency cycle: {' → '.join([*chain, f.id])}")
        if rules.master is None:
            return
        if rules.master not in by_id:
            t.problem("master", unknown(rules.master, "a flag", ids))
            return
        if by_id[rules.master].depends_on:
            t.problem("master", f"the master {rules.master!r} cannot depend on another flag")
            return
        for ft, f in zip(items, rules.flags, strict=True):
            if f.id == rules.master or f.id in reported:
                continue
            chain, at = set(), f
            while at.depends_on and at.depends_on in by_id and at.id not in chain:
                chain.add(at.id)
                at = by_id[at.depends_on]
            if at.depends_on and at.depends_on not in by_id:
                continue  # an unknown flag: said above
            if at.id != rules.master:
                ft.problem(
                    "id",
                    f"flag {f.id!r} does not depend on the master {rules.master!r}: "
                    f'the master turns every flag off (add depends_on = "{rules.master}")',
                )

    # --- [log] and [process] --------------------------------------------------------------------

    def _log(self, root: _Table) -> LogFormat | None:
        t = checks.required_table(root, "log", "request_line, [log.flag_line] and [log.plain] or [log.json]")
        if t is None:
            return None
        flag_line = self._flag_line(t)
        request_line = t.get("request_line", str, check=_non_empty)
        plain = json = None
        pt = t.table("plain")
        if pt:
            plain = PlainLine(pt.get("line", str, "[{level}] {logger}: {message}", checks.plain_template))
            pt.finish()
        jt = t.table("json")
        if jt:
            level = jt.get("level", (str, list), ["level"])
            levels = [level] if isinstance(level, str) else level
            if checks.names(levels):
                jt.problem("level", checks.names(levels))
            json = JsonLog(
                tuple(levels), jt.get("logger", str, "name", _non_empty), jt.get("message", str, "message", _non_empty)
            )
            jt.finish()
        if not pt and not jt and "plain" not in t.data and "json" not in t.data:
            t.problem(None, "say how the service writes its log lines: [log.plain] and/or [log.json]")
        mode_lines = []
        mt = t.table("mode_lines")
        if mt:
            for mode, line in mt.data.items():
                mt.used.add(mode)
                if mode not in self.mode_ids:
                    mt.problem(mode, unknown(mode, "a mode", self.mode_ids) + " (modes are [[probe.modes]])")
                elif not isinstance(line, str) or not line.strip():
                    mt.problem(mode, "expected the line's text, in quotes")
                else:
                    mode_lines.append((mode, line))
        log = LogFormat(
            flag_line=flag_line,  # type: ignore[arg-type]  # None only with problems reported
            request_line=request_line or "",
            plain=plain,
            json=json,
            error_levels=tuple(t.get("error_levels", list, ["ERROR", "CRITICAL", "FATAL"], checks.names) or ()),
            error_text=tuple(t.get("error_text", list, ["ERROR"], checks.names) or ()),
            mode_lines=tuple(mode_lines),
        )
        t.finish()
        return log

    def _flag_line(self, log: _Table) -> FlagLine | None:
        t = checks.required_table(log, "flag_line", "template, on and off")
        if t is None:
            return None
        template = t.get("template", str, check=_non_empty)
        on, off = t.get("on", str, check=_non_empty), t.get("off", str, check=_non_empty)
        t.finish()
        if on and off and on == off:
            t.problem("off", f"on and off must differ (both are {on!r})")
            return None
        if not template:
            return None
        try:
            pieces = patterns.split(template)
        except TemplateError as exc:
            t.problem("template", str(exc))
            return None
        fields = [text for kind, text in pieces if kind == "field"]
        ok = True
        for name in dict.fromkeys(fields):
            if name not in self.flag_ids:
                t.problem("template", unknown(name, "a flag", self.flag_ids) + " (one {id} per flag)")
                ok = False
            elif fields.count(name) > 1:
                t.problem("template", f"{{{name}}} appears {fields.count(name)} times; once per flag")
                ok = False
        for flag in self.flag_ids:
            if flag not in fields:
                t.problem("template", f"flag {flag!r} is not in the line: add {{{flag}}} where the service writes it")
                ok = False
        if not any(kind == "text" and re.search(r"[A-Za-z]", text) for kind, text in pieces):
            t.problem("template", "the line needs some fixed words to be told from other lines")
            ok = False
        return FlagLine(template, on, off, tuple(dict.fromkeys(fields))) if ok and on and off else None

    def _process(self, root: _Table) -> ProcessSpec:
        t = root.table("process")
        if t is None:
            return ProcessSpec()
        environ = t.get("environ", str, ProcessSpec.environ, checks.environ_path)
        t.finish()
        return ProcessSpec(environ)


# --- the file ---------------------------------------------------------------------------------


def read_toml(path: Path) -> tuple[str, dict[str, Any]]:
    """The text and data of a TOML file, or ProfileError saying what and where (as the config)."""
    return config_load.read_toml(path, "profile", ProfileError)


def describe_profile(profile: Profile) -> str:
    """One line: what a loaded profile holds (for `config validate` and the checker)."""
    flags = ", ".join(f.env for f in profile.flags.flags)
    return (
        f"{profile.info.service}: {len(profile.flags.flags)} flags ({flags}), "
        f"{len(profile.actions)} actions, {len(profile.matrix)} matrix rows, {len(profile.validations)} validations, "
        f"{len(profile.troubleshooting)} troubleshooting issues, {len(profile.checklist)} checklist items, "
        f"{len(profile.scenarios)} drill scenarios"
    )


def is_profile(path: str | os.PathLike[str]) -> bool:
    """Whether ``path`` reads as a profile (a ``[profile]`` table) rather than a config."""
    try:
        _, data = read_toml(Path(path))
    except ProfileError:
        return False  # unreadable or not TOML: the config's reader says why
    return isinstance(data.get("profile"), dict)


def load_profile(path: str | os.PathLike[str] = DEFAULT_PROFILE) -> Profile:
    """Read and validate a profile; ProfileError lists every problem (its drill files' too)."""
    p = Path(path)
    text, data = read_toml(p)
    loader = _ProfileLoader(p, text)
    profile = loader.load(data)
    if profile is None:
        raise ProfileError(sorted(loader.problems, key=lambda x: (x.file != str(p), x.file, x.line or 0)))
    return profile


# One parse per path per process: the dashboard asks every probe round. A broken profile's
# error is kept too, so it is not re-read (and re-reported) every round. The lock: the probe
# worker's first round asks from a thread and the event loop at once, which parsed it twice.
_LOADED: dict[str, Profile | ProfileError] = {}
_LOADING = threading.Lock()


def profile_at(path: str | os.PathLike[str] | None) -> Profile:
    """The profile at ``path`` (None: the default), read on first use; ProfileError if broken."""
    key = str(path if path is not None else DEFAULT_PROFILE)  # the config's paths are absolute already
    found = _LOADED.get(key)
    if found is None:
        with _LOADING:
            if key not in _LOADED:
                try:
                    _LOADED[key] = load_profile(key)
                except ProfileError as exc:
                    _LOADED[key] = exc
            found = _LOADED[key]
    if isinstance(found, ProfileError):
        raise found
    return found


def profile_path(env: Environment) -> str:
    """The file the environment's profile is read from (its config's `profile` key, else the default)."""
    return env.profile or str(DEFAULT_PROFILE)


def profile_of(env: Environment) -> Profile:
    """The environment's service profile."""
    return profile_at(profile_path(env))
