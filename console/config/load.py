"""Load and validate a config file, reporting every problem with file, line and key."""

from __future__ import annotations

import functools
import os
import re
import tomllib
from pathlib import Path
from typing import Any

from console import files
from console.config.load_overrides import OverridesReader
from console.config.locate import Path as KeyPath
from console.config.locate import key_lines, locate
from console.config.model import (
    DEFAULT_JOURNAL,
    KINDS,
    Config,
    Database,
    Environment,
    Fleet,
    Host,
    Thresholds,
    placeholders,
    quoted_placeholders,
)
from console.config.reader import (
    _MOVED_THRESHOLDS,
    ConfigError,
    Problem,
    _did_you_mean,
    _dotted,
    _names,
    _non_empty,
    _one_of,
    _resolve_path,
    _Table,
    _url,
    _within,
)

# Every wait and limit has a sane, finite range: `probe_timeout_s = inf` would make a probe
# wait for ever, `probe_interval_s = 0.001` would spin a core.
THRESHOLD_RANGES = {
    "response_time_ok_s": _within(0, 3600, " s", low_open=True),
    "error_lines_window": _within(1, 100_000, " lines"),
    "memory_ok_mb": _within(0, 10_000_000, " MB", low_open=True),
    "memory_warn_mb": _within(0, 10_000_000, " MB", low_open=True),
    "probe_timeout_s": _within(0.5, 300, " s"),
    "probe_interval_s": _within(1, 3600, " s"),
}


MAX_CONFIG_BYTES = 1024 * 1024
BOM = b"\xef\xbb\xbf"


class _Loader(OverridesReader):
    def __init__(self, path: Path, text: str) -> None:
        self.file = str(path)
        self.base = path.resolve().parent
        self.text = text
        self.problems: list[Problem] = []

    @functools.cached_property
    def index(self) -> dict[tuple[str | int, ...], int]:
        """Each key's line, found only once a problem needs one (most loads have none)."""
        return key_lines(self.text)

    def problem(self, path: KeyPath, message: str) -> None:
        self.problems.append(Problem(self.file, locate(self.index, path), _dotted(path), message))

    def load(self, data: dict[str, Any]) -> Config | None:
        root = _Table(self, data, ())
        hosts = self._hosts(root)
        # Top-level `profile` is every environment's unless it names its own; None is the
        # default profile. Only the path is kept: the profile is read when first used.
        self.profile = self._profile(root)
        environments = self._environments(root, hosts)
        thresholds = self._thresholds(root)
        matrix = self._matrix(root, environments)
        checklist = self._checklist(root)
        contacts, escalation = self._contacts(root, environments)
        notifications = self._notifications(root)
        approvals = self._approvals(root)
        console = root.table("console")
        journal = defaults_journal = DEFAULT_JOURNAL
        drill = False
        if console:
            journal = console.get("journal", str, defaults_journal, _non_empty)
            drill = console.get("drill", bool, False)
            console.finish()
            if journal != defaults_journal:
                journal = _resolve_path(self.base, journal)
        root.finish()
        if self.problems:
            return None
        return Config(
            path=self.file,
            environments=environments,
            thresholds=thresholds,
            decision_matrix=matrix,
            checklist=checklist,
            contacts=contacts,
            escalation=escalation,
            notifications=notifications,
            approvals=approvals,
            journal=journal,
            drill=drill,
        )

    def _hosts(self, root: _Table) -> dict[str, Host]:
        out: dict[str, Host] = {}
        table = root.table("hosts")
        if not table:
            return out
        for name in table.data:
            t = table.table(name)
            if t is None:
                continue
            if name == "local":
                table.problem(
                    name,
                    '"local" is reserved for this machine; give the host another name '
                    '(a host with address = "local" runs here too)',
                )
                continue
            address = t.get("address", str, check=_non_empty)
            key_file = t.get("key_file", str, None)
            known_hosts = t.get("known_hosts", str, None)
            host = Host(
                name=name,
                address=address or "",
                port=t.get("port", int, 22, lambda v: None if 0 < v < 65536 else f"{v} is not a TCP port"),
                user=t.get("user", str, None),
                key_file=_resolve_path(self.base, key_file) if key_file else None,
                known_hosts=_resolve_path(self.base, known_hosts) if known_hosts else None,
                connect_timeout=t.get("connect_timeout", float, 10.0, _within(0, 300, " s", low_open=True)),
                vars=self._vars(t),
            )
            t.finish()
            out[name] = host
        return out

    def _vars(self, t: _Table) -> tuple[tuple[str, str], ...]:
        table = t.table("vars")
        if table is None:
            return ()
        out = []
        for key, value in table.data.items():
            table.used.add(key)
            if isinstance(value, bool) or not isinstance(value, (str, int)):
                table.problem(key, f"expected a string or integer, got {value!r}")
                continue
            out.append((key, str(value)))
        return tuple(out)

    def _environments(self, root: _Table, hosts: dict[str, Host]) -> dict[str, Environment]:
        envs = root.table("environments")
        out: dict[str, Environment] = {}
        if envs is None:
            if "environments" not in root.data:
                root.problem("environments", "no environment is configured (add [environments.staging])")
            return out
        if not envs.data:
            envs.problem(None, "no environment is configured (add [environments.staging])")
        for name in envs.data:
            t = envs.table(name)
            if t is not None:
                env = self._environment(name, t, hosts)
                if env is not None:
                    out[name] = env
        return out

    def _environment(self, name: str, t: _Table, hosts: dict[str, Host]) -> Environment | None:
        before = len(self.problems)
        inventory_t = t.table("inventory")
        host_names = t.get("hosts", list, ["local"])
        env_hosts: list[Host] = []
        from_inventory: tuple[str, str] | None = None
        if inventory_t is not None:
            if "hosts" in t.data:
                t.problem(
                    "hosts",
                    "give hosts or an inventory, not both: the inventory's group is this environment's host list",
                )
            env_hosts, from_inventory = self._inventory_hosts(inventory_t, hosts)
        elif host_names is not None:
            if not host_names:
                t.problem("hosts", 'needs at least one host ("local" or a name from [hosts])')
            for i, h in enumerate(host_names):
                if h in host_names[:i]:
                    t.problem("hosts", f"host {h!r} is listed twice (each host is edited and restarted once)")
                elif h == "local":
                    env_hosts.append(Host(name="local"))
                elif isinstance(h, str) and h in hosts:
                    env_hosts.append(hosts[h])
                elif not isinstance(h, str):
                    t.problem("hosts", f'host #{i + 1} must be a name in quotes ("local" or a name from [hosts])')
                else:
                    known = ", ".join(sorted(hosts)) or "none is defined"
                    t.problem(
                        "hosts",
                        f"unknown host {h!r}{_did_you_mean(h, [*sorted(hosts), 'local'])}: "
                        f'use "local" or a host defined in [hosts] ({known})',
                    )
        log_file = t.get("log_file", str, None)
        log_command = t.get("log_command", str, None)
        if not log_file and not log_command:
            t.problem(None, "needs a log source: log_file or log_command")
        if log_file and log_command:
            t.problem("log_command", "give log_file or log_command, not both")
        database = self._database(t)
        fleet = self._fleet(t)
        env = Environment(
            name=name,
            kind=t.get("kind", str, check=_one_of(KINDS)),
            hosts=tuple(env_hosts),
            api_url=(t.get("api_url", str, check=_url) or "").rstrip("/"),
            # The probe's parameters: optional here, the profile may give them (config validate checks).
            channel_id=t.get("channel_id", int, None),
            days=t.get("days", int, None, _within(1, 3650, " days")),
            login_email=t.get("login_email", str, None, _non_empty),
            password=t.secret("password", required=False),
            env_file=t.get("env_file", str, check=_non_empty),
            restart_command=t.get("restart_command", str, check=_non_empty),
            reload_command=t.get("reload_command", str, None),
            force_restart_command=t.get("force_restart_command", str, None),
            pid_command=t.get("pid_command", str, check=_non_empty),
            log_file=log_file,
            log_command=log_command,
            service_log_command=t.get("service_log_command", str, None),
            repo_path=t.get("repo_path", str, None),
            rebuild_command=t.get("rebuild_command", str, None),
            phase4_commit_message=t.get("phase4_commit_message", str, None, _non_empty),
            database=database,
            api_reach=t.get("api_reach", str, "forward", _one_of(("forward", "direct"))),
            fleet=fleet,
            lock_dir=t.get("lock_dir", str, "/tmp", _non_empty),
            inventory=from_inventory,
            profile=self._profile(t) if "profile" in t.data else self.profile,
        )
        t.finish()
        self._check_placeholders(t, env)
        return env if len(self.problems) == before else None

    def _profile(self, t: _Table) -> str | None:
        """A service profile's path, relative to the config file; it must be a file (a stat,
        not a parse: `config validate` parses it)."""
        value = t.get("profile", str, None, _non_empty)
        if not value:
            return None
        path = _resolve_path(self.base, value)
        if not os.path.isfile(path):
            t.problem("profile", f"no such profile file: {path}")
        return path

    def _check_placeholders(self, t: _Table, env: Environment) -> None:
        """Every {name} in a path or command must be known on every host; {name:q}
        (shell-quoted) belongs in commands only."""
        for key, value in t.data.items():
            if not isinstance(value, str):
                continue
            if not key.endswith("_command"):
                for name in sorted(quoted_placeholders(value)):
                    t.problem(key, f"{{{name}:q}} shell-quotes a value, for commands; a path or URL takes {{{name}}}")
            for name in sorted(placeholders(value)):
                if name == "host":
                    continue
                missing = [h.name for h in env.hosts if name not in dict(h.vars)]
                if missing and env.inventory is not None:
                    file = env.inventory[0]
                    shown = ", ".join(missing[:5]) + (f" and {len(missing) - 5} more" if len(missing) > 5 else "")
                    t.problem(
                        key,
                        f"{{{name}}} has no value on host(s) {shown}: set {name} in the inventory {file} "
                        f"(a host or group variable) or in [environments.{env.name}.inventory.vars]",
                    )
                elif missing:
                    where = [f"[hosts.{h}.vars]" for h in missing if h != "local"]
                    fix = f"set {name} = … in {', '.join(where)}" if where else ""
                    if "local" in missing:
                        fix += ("; " if fix else "") + (
                            '"local" has no vars: use a host with address = "local" and its own vars'
                        )
                    t.problem(key, f"{{{name}}} has no value on host(s) {', '.join(missing)}: {fix}")

    def _inventory_hosts(self, t: _Table, tables: dict[str, Host]) -> tuple[list[Host], tuple[str, str] | None]:
        """The hosts of ``[environments.X.inventory]``'s group: each inventory host's own
        ansible_* variables, else this table's defaults, else the console's."""
        from console.config import inventory as inventories  # only configs that name one pay for it

        file = t.get("file", str, check=_non_empty)
        group = t.get("group", str, check=_non_empty)
        key_file = t.get("key_file", str, None)
        known_hosts = t.get("known_hosts", str, None)
        defaults = inventories.Defaults(
            user=t.get("user", str, None, _non_empty),
            port=t.get("port", int, None, lambda v: None if 0 < v < 65536 else f"{v} is not a TCP port"),
            key_file=_resolve_path(self.base, key_file) if key_file else None,
            known_hosts=_resolve_path(self.base, known_hosts) if known_hosts else None,
            connect_timeout=t.get("connect_timeout", float, 10.0, _within(0, 300, " s", low_open=True)),
            vars=self._vars(t),
        )
        t.finish()
        if not file or not group:
            return [], None
        path = _resolve_path(self.base, file)
        try:
            inventory = inventories.read(path)
        except inventories.InventoryError as exc:
            t.problem("file", str(exc))
            return [], None
        names = inventory.group_hosts(group)
        if names is None:
            known = sorted(set(inventory.groups) - {"all", "ungrouped"})
            t.problem(
                "group",
                f"no group {group!r} in the inventory {path}{_did_you_mean(group, known)}; "
                f"its groups: {', '.join(known) or 'none'}",
            )
            return [], None
        if not names:
            t.problem("group", f"group {group!r} of the inventory {path} has no hosts")
        out: list[Host] = []
        base = os.path.dirname(path)
        for name in names:
            if name in tables or name == "local":
                where = ("hosts", name) if name in tables else (*t.path, "group")
                self.problem(
                    where,
                    f"host {name!r} is in group {group} of the inventory {path} too: each host is defined "
                    "once, in the inventory or in a [hosts] table"
                    if name in tables
                    else f'the inventory {path} has a host named "local", the name this machine has here: rename it',
                )
                continue
            kwargs, problems = inventories.connection(name, inventory.hostvars.get(name, {}), defaults, base)
            for var, message in problems:
                line = inventories.host_line(path, name)
                if line is not None:
                    self.problems.append(Problem(path, line, f"{name}.{var}", message))
                else:  # only a range (web[01:50]) names it: say it at the group
                    t.problem("group", f"host {name!r} of the inventory {path}: {var}: {message}")
            if not problems:
                out.append(Host(**kwargs))
        return out, (path, group)

    def _database(self, env: _Table) -> Database | None:
        t = env.table("database")
        if t is None:
            return None
        script = t.get("rollback_script", str, check=_non_empty)
        migration = t.get("migration_script", str, None)
        db = Database(
            dsn=t.secret("dsn"),
            rollback_script=script or "",
            migration_script=migration,
            table=t.get("table", str, "posts", _non_empty),
            columns=tuple(t.get("columns", list, ["has_video", "has_media"], _names) or ()),
            indexes=tuple(t.get("indexes", list, ["idx_posts_content_type", "idx_posts_date_content"], _names) or ()),
            reach=t.get("reach", str, "forward", _one_of(("forward", "direct"))),
            lock_timeout_s=t.get(
                "lock_timeout_s", float, Database.lock_timeout_s, _within(0, 600, " s", low_open=True)
            ),
            statement_timeout_s=t.get(
                "statement_timeout_s", float, Database.statement_timeout_s, _within(0, 3600, " s", low_open=True)
            ),
        )
        t.finish()
        return db

    def _fleet(self, env: _Table) -> Fleet:
        t = env.table("fleet")
        if t is None:
            return Fleet()
        fleet = Fleet(
            mode=t.get("mode", str, "parallel", _one_of(("parallel", "rolling"))),
            concurrency=t.get("concurrency", int, 10, _within(1, 1000)),
            batch_size=t.get("batch_size", int, 5, _within(1, 1000)),
            stop_on_first_failure=t.get("stop_on_first_failure", bool, False),
        )
        t.finish()
        return fleet

    def _thresholds(self, root: _Table) -> Thresholds:
        t = root.table("thresholds")
        if t is None:
            return Thresholds()
        d = Thresholds()
        values = {
            name: t.get(name, int if name == "error_lines_window" else float, getattr(d, name), THRESHOLD_RANGES[name])
            for name in d.__dataclass_fields__
            if name != "given"
        }
        for old, signal in _MOVED_THRESHOLDS.items():
            if old in t.data:
                t.used.add(old)  # not "did you mean" a different threshold: that would change its meaning
                t.problem(
                    old,
                    f'moved to the decision matrix: set `above` in its [[decision_matrix]] row (signal = "{signal}")',
                )
        t.finish()
        return Thresholds(**values, given=frozenset(k for k in values if k in t.data))


def _toml_message(message: str) -> str:
    """tomllib's words for a key or table written twice, said plainly."""
    declared = re.fullmatch(r"Cannot declare \((.*)\) twice", message)
    if declared:
        name = ".".join(re.findall(r"'((?:[^'\\]|\\.)*)'", declared.group(1)))
        return f"[{name}] is declared twice"
    if message == "Cannot overwrite a value":
        return "this key is already set above (Cannot overwrite a value)"
    return message


def read_toml(
    path: str | os.PathLike[str], what: str = "config", error: type[ConfigError] = ConfigError
) -> tuple[str, dict[str, Any]]:
    """The text and data of a TOML file (a config, a profile, a drill file); ``error`` lists
    why not, with the file and line: unreadable, not UTF-8, not TOML."""
    p = Path(path)
    try:
        raw = files.read_file(p, max_bytes=MAX_CONFIG_BYTES)
    except files.FileProblem as exc:
        raise error([Problem(str(p), None, "", f"cannot read {what}: {exc.reason.lstrip(': ')}")]) from None
    except OSError as exc:
        raise error([Problem(str(p), None, "", f"cannot read {what}: {exc.strerror or exc}")]) from None
    if raw.startswith(BOM):  # Notepad's UTF-8 signature; TOML itself has no use for it
        raw = raw[len(BOM) :]
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = raw[: exc.start].count(b"\n") + 1
        column = exc.start - (raw.rfind(b"\n", 0, exc.start) + 1) + 1
        message = f"{what} is not valid UTF-8 (byte 0x{raw[exc.start]:02x} at column {column}); save it as UTF-8"
        raise error([Problem(str(p), line, "", message)]) from None
    try:
        return text, tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        # Python < 3.14 only puts the position in the message text.
        m = re.search(r"\(at line (\d+), column (\d+)\)", str(exc))
        line = int(m.group(1)) if m else None
        if "(at end of document)" in str(exc):
            line = text.count("\n") + (0 if text.endswith("\n") else 1) or 1
        message = _toml_message(re.sub(r"\s*\(at (line \d+, column \d+|end of document)\)", "", str(exc)))
        if m:
            message += f" (column {m.group(2)})"
        elif line:
            message += " (at the end of the file)"
        raise error([Problem(str(p), line, "", f"not valid TOML: {message}")]) from None
    except RecursionError:
        raise error([Problem(str(p), None, "", "not valid TOML: nested too deeply")]) from None


def load_config(path: str | os.PathLike[str]) -> Config:
    """Read and validate a config file; raise ConfigError listing every problem."""
    p = Path(path)
    text, data = read_toml(p)
    loader = _Loader(p, text)
    config = loader.load(data)
    if config is None:
        # The config's own lines first, then those of the inventories it names.
        raise ConfigError(sorted(loader.problems, key=lambda p: (p.file != loader.file, p.file, p.line or 0)))
    return config


def find_config(explicit: str | None) -> Path:
    """--config, then $ROLLBACK_CONSOLE_CONFIG, then the XDG config dir."""
    if explicit:
        return Path(explicit)
    env = os.environ.get("ROLLBACK_CONSOLE_CONFIG")
    if env:
        return Path(env)
    base = Path(os.environ.get("XDG_CONFIG_HOME") or Path.home() / ".config")
    return base / "rollback-console" / "config.toml"
