"""The configuration, as immutable dataclasses. Loading and validation live in load.py."""

from __future__ import annotations

import os
import re
import shlex
from dataclasses import dataclass, field
from pathlib import Path

from console import files

ACTIONS = (
    "quick",
    "partial-time-weighting",
    "partial-content-type",
    "code",
    "database",
    "full",
)
# Matrix rows may also recommend something that is not a rollback.
ADVICE_ACTIONS = ("investigate", "check-flags")
SEVERITIES = ("HIGH", "MEDIUM", "LOW")
SIGNALS = ("response_time_s", "error_rate", "memory_mb", "missing_data", "unhealthy")
KINDS = ("staging", "production")
DEFAULT_JOURNAL = "~/.local/state/rollback-console/journal.jsonl"
MAX_SECRET_BYTES = 64 * 1024
SECRET_READ_TIMEOUT_S = 5.0


@dataclass(frozen=True)
class SecretRef:
    """Where a secret lives: an environment variable or a file. Never the secret itself."""

    env: str | None = None
    file: str | None = None

    def describe(self) -> str:
        return f"${self.env}" if self.env else f"file {self.file}"

    def resolve(self) -> str:
        """The secret's value; raises SecretError saying where it looked."""
        if self.env:
            value = os.environ.get(self.env)
            if value is None:
                raise SecretError(f"environment variable {self.env} is not set")
            return value
        assert self.file is not None
        path = Path(self.file).expanduser()
        try:
            # Bounded in size and time: a named pipe here once froze the console in open().
            data = files.read_file(path, max_bytes=MAX_SECRET_BYTES, timeout=SECRET_READ_TIMEOUT_S)
        except files.FileProblem as exc:
            raise SecretError(f"cannot read secret file {path}: {exc.reason.lstrip(': ')}") from None
        except OSError as exc:
            raise SecretError(f"cannot read secret file {path}: {exc.strerror or exc}") from None
        try:
            return data.decode("utf-8").strip()
        except UnicodeDecodeError:  # its own message would quote the secret's bytes
            raise SecretError(f"secret file {path} is not UTF-8 text") from None


class SecretError(RuntimeError):
    pass


@dataclass(frozen=True)
class Host:
    """One host of an environment: this machine (``local``) or one reached over SSH."""

    name: str
    address: str = "local"
    port: int = 22
    user: str | None = None
    key_file: str | None = None
    known_hosts: str | None = None
    connect_timeout: float = 10.0
    # Per-host values for {placeholders} in the environment's paths and commands,
    # for fleets whose hosts differ (install dir, port).
    vars: tuple[tuple[str, str], ...] = ()

    @property
    def is_local(self) -> bool:
        return self.address == "local"

    def describe(self) -> str:
        if self.is_local:
            return "local"
        user = f"{self.user}@" if self.user else ""
        port = f":{self.port}" if self.port != 22 else ""
        return f"{user}{self.address}{port}"


@dataclass(frozen=True)
class Database:
    """An environment's database: how to reach it and what its rollback script removes."""

    dsn: SecretRef
    rollback_script: str
    table: str = "posts"
    columns: tuple[str, ...] = ("has_video", "has_media")
    indexes: tuple[str, ...] = ("idx_posts_content_type", "idx_posts_date_content")
    migration_script: str | None = None
    reach: str = "forward"  # "forward" through the host's SSH, or "direct"
    # Give up rather than hold the service up: waiting for a table lock (every new query on
    # the table queues behind the wait), and any one statement.
    lock_timeout_s: float = 3.0
    statement_timeout_s: float = 60.0


@dataclass(frozen=True)
class Fleet:
    """How a rollback goes across an environment's hosts: parallel (bounded) or rolling."""

    mode: str = "parallel"  # or "rolling"
    concurrency: int = 10
    batch_size: int = 5
    stop_on_first_failure: bool = False


@dataclass(frozen=True)
class Environment:
    """One environment (staging, production): its hosts, its API and its commands."""

    name: str
    kind: str
    hosts: tuple[Host, ...]
    api_url: str
    env_file: str
    restart_command: str
    pid_command: str
    # The Phase 4 probe's parameters, set here as before profiles: each overrides the profile's
    # value for this environment (console.probes.parameters); None: the profile's.
    channel_id: int | None = None
    login_email: str | None = None
    password: SecretRef | None = None
    days: int | None = None
    reload_command: str | None = None
    force_restart_command: str | None = None
    log_file: str | None = None
    log_command: str | None = None
    service_log_command: str | None = None
    repo_path: str | None = None
    rebuild_command: str | None = None
    phase4_commit_message: str | None = None  # the code rollback's commit; None: the profile's
    database: Database | None = None
    api_reach: str = "forward"  # "forward" through SSH, or "direct"
    fleet: Fleet = field(default_factory=Fleet)
    lock_dir: str = "/tmp"
    inventory: tuple[str, str] | None = None  # (file, group) the hosts came from, if an inventory
    profile: str | None = None  # its service profile's path; None: console.profile.DEFAULT_PROFILE

    def hosts_source(self) -> str:
        """Where the host list comes from, in words."""
        if self.inventory is None:
            return "the config"
        return f"group {self.inventory[1]} of the inventory {self.inventory[0]}"

    @property
    def is_production(self) -> bool:
        return self.kind == "production"

    def expand(self, text: str, host: Host) -> str:
        """A path or command as it applies on one host: {placeholders} from the host's vars."""
        return expand(text, host)


# {name} pastes a host var as it is; {name:q} pastes it shell-quoted, for commands.
_PLACEHOLDER = re.compile(r"\{([A-Za-z_][A-Za-z0-9_]*)(:q)?\}")
RESERVED_PLACEHOLDERS = ("lines",)  # filled in at run time (log_command)


def placeholders(text: str) -> set[str]:
    return {m.group(1) for m in _PLACEHOLDER.finditer(text)} - set(RESERVED_PLACEHOLDERS)


def quoted_placeholders(text: str) -> set[str]:
    return {m.group(1) for m in _PLACEHOLDER.finditer(text) if m.group(2)}


def expand(text: str, host: Host) -> str:
    values = dict(host.vars)
    values.setdefault("host", host.name)

    def fill(m: re.Match[str]) -> str:
        value = values.get(m.group(1))
        if value is None:
            return m.group(0)
        return shlex.quote(value) if m.group(2) else value

    return _PLACEHOLDER.sub(fill, text)


@dataclass(frozen=True)
class Thresholds:
    """Validation and display thresholds. The matrix's own limits live in its rows."""

    response_time_ok_s: float = 2.0
    error_lines_window: int = 100
    memory_ok_mb: float = 500.0
    memory_warn_mb: float = 1000.0
    probe_timeout_s: float = 10.0
    probe_interval_s: float = 5.0
    given: frozenset[str] = frozenset()  # the ones the config sets: they win over the profile's

    def response_time_s(self, profile_below_s: float | None) -> float:
        """The response-time limit of a validation: the config's when it sets one, else the
        profile's validation's `below_s`, else the default."""
        if "response_time_ok_s" in self.given or profile_below_s is None:
            return self.response_time_ok_s
        return profile_below_s


@dataclass(frozen=True)
class MatrixRow:
    """A row of the decision matrix as the config writes it (it replaces the profile's)."""

    symptom: str
    severity: str
    action: str
    timeline: str
    signal: str | None = None  # machine-checkable; None means a person declares it
    above: float | None = None
    advice: str | None = None

    @property
    def declared(self) -> bool:
        return self.signal is None


@dataclass(frozen=True)
class ChecklistItem:
    """An item of the post-rollback checklist as the config writes it."""

    id: str
    text: str
    check: str | None = None  # which automatic check ticks it, if any


@dataclass(frozen=True)
class Contact:
    """Someone the escalation path names: role, name, how to reach them, when."""

    role: str
    name: str
    contact: str
    availability: str = ""

    @property
    def filled_in(self) -> bool:
        """False for the runbook's placeholders: a name or a way to reach them that is TBD or empty."""
        return not {self.name.strip().upper(), self.contact.strip().upper()} & {"", "TBD"}


@dataclass(frozen=True)
class EscalationLevel:
    """A step of the escalation path and the roles it calls."""

    level: int
    description: str
    contacts: tuple[str, ...] = ()  # roles


@dataclass(frozen=True)
class Notifications:
    """Where the console posts rollback events (a webhook), and how long it waits."""

    webhook: SecretRef | None = None
    timeout_s: float = 5.0


@dataclass(frozen=True)
class Approvals:
    """Production requests waiting for a second person (see console/journal/requests.py)."""

    expire_after_s: float = 900.0  # a request nobody started by then lapses (journaled run_expired)


@dataclass(frozen=True)
class Config:
    """The whole config file, loaded and checked."""

    path: str
    environments: dict[str, Environment]
    thresholds: Thresholds = field(default_factory=Thresholds)
    decision_matrix: tuple[MatrixRow, ...] = ()
    checklist: tuple[ChecklistItem, ...] = ()
    contacts: tuple[Contact, ...] = ()
    escalation: tuple[EscalationLevel, ...] = ()
    notifications: Notifications = field(default_factory=Notifications)
    approvals: Approvals = field(default_factory=Approvals)
    journal: str = DEFAULT_JOURNAL
    drill: bool = False

    @property
    def journal_path(self) -> Path:
        path = Path(os.path.expandvars(self.journal)).expanduser()
        if not path.is_absolute():
            path = Path(self.path).resolve().parent / path
        return path

    def environment(self, name: str) -> Environment:
        try:
            return self.environments[name]
        except KeyError:
            known = ", ".join(self.environments) or "none"
            raise KeyError(f"no environment {name!r} in {self.path} (known: {known})") from None
