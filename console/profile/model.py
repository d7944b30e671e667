"""A service profile as immutable dataclasses. Loading and validation live in load.py."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from console.config.model import Contact, EscalationLevel, SecretRef
from console.profile.patterns import FlagLine, PlainLine, fill, fill_json
from console.profile.predicates import JsonPath, Predicate

# --- flags --------------------------------------------------------------------------------


@dataclass(frozen=True)
class Flag:
    """One feature flag: its variable in the env file, how the service logs it, what it depends on."""

    id: str  # the name the profile uses everywhere: actions, modes, drills, the flag line
    env: str  # the variable in the env file and the process environment
    label: str  # as the service logs it ("Time-weighting")
    short: str | None = None  # its column's header on the dashboard (≤ 7 characters); None: from the label
    description: str = ""
    depends_on: str | None = None  # a flag id: this one only acts while that one is on
    missing: bool = True  # the value when the variable is not set at all

    @property
    def column(self) -> str:
        """The header of the flag's column: ``short``, else the label cut to 7 characters."""
        return self.short or self.label.lower()[:7]


@dataclass(frozen=True)
class FlagRules:
    """The flags, how the service reads them and how the console writes them."""

    flags: tuple[Flag, ...]
    master: str | None = None  # the flag whose off turns every other off
    on_words: tuple[str, ...] = ("true",)  # values that mean on; anything else means off
    case_sensitive: bool = False
    write_on: str = "true"
    write_off: str = "false"
    keep_case: bool = False  # write in the case of the value replaced ("True" → "False")

    @property
    def ids(self) -> tuple[str, ...]:
        return tuple(f.id for f in self.flags)

    def flag(self, flag_id: str) -> Flag:
        return next(f for f in self.flags if f.id == flag_id)

    def by_env(self, env: str) -> Flag | None:
        return next((f for f in self.flags if f.env == env), None)

    def read(self, flag_id: str, raw: str | None) -> bool:
        """The service's own rule for one value (Phase 4: missing → true; on iff lower() == "true")."""
        return self.flag(flag_id).missing if raw is None else self.means_on(raw)

    def means_on(self, raw: str) -> bool:
        if self.case_sensitive:
            return raw in self.on_words
        return raw.lower() in {w.lower() for w in self.on_words}

    def read_environ(self, environ: Mapping[str, str | None]) -> dict[str, bool]:
        """Every flag's value from an env file's or a process's variables."""
        return {f.id: self.read(f.id, environ.get(f.env)) for f in self.flags}

    def effective(self, values: Mapping[str, bool]) -> dict[str, bool]:
        """What acts: a flag is on only while every flag it depends on is on."""
        out: dict[str, bool] = {}

        def on(flag_id: str) -> bool:
            if flag_id not in out:
                f = self.flag(flag_id)
                out[flag_id] = bool(values[flag_id]) and (f.depends_on is None or on(f.depends_on))
            return out[flag_id]

        for f in self.flags:
            on(f.id)
        return out

    def written(self, on: bool, replacing: str | None = None) -> str:
        """The value the console writes, in the case of the value it replaces when keep_case."""
        word = self.write_on if on else self.write_off
        if self.keep_case and replacing:
            if replacing.isupper():
                return word.upper()
            if replacing[:1].isupper() and replacing[1:].islower():
                return word.capitalize()
            if replacing.islower():
                return word.lower()
        return word


# --- log and process -------------------------------------------------------------------------


@dataclass(frozen=True)
class JsonLog:
    """Where a JSON log line keeps its level, its logger and its message."""

    level: tuple[str, ...] = ("level",)  # keys that may hold the level
    logger: str = "name"
    message: str = "message"


@dataclass(frozen=True)
class LogFormat:
    """How the service's log reads: the flag line, the functional probe's requests, errors, modes."""

    flag_line: FlagLine
    request_line: str  # a line holding this text marks one functional-probe request
    plain: PlainLine | None = None
    json: JsonLog | None = None
    error_levels: tuple[str, ...] = ("ERROR", "CRITICAL", "FATAL")
    error_text: tuple[str, ...] = ("ERROR",)  # the runbook's `grep ERROR`: any line holding one counts
    mode_lines: tuple[tuple[str, str], ...] = ()  # (mode id, the line that says a request ran in it)

    @property
    def formats(self) -> tuple[str, ...]:
        return tuple(name for name, f in (("plain", self.plain), ("json", self.json)) if f is not None)


@dataclass(frozen=True)
class ProcessSpec:
    """Where the running process's environment is read (``{pid}`` filled in)."""

    environ: str = "/proc/{pid}/environ"  # NUL-separated NAME=value


# --- health and the functional probe ----------------------------------------------------------


@dataclass(frozen=True)
class Endpoint:
    """A health endpoint and what an ok answer from it says."""

    endpoint: str  # "/status"
    ok: Predicate  # what an ok answer says
    version: JsonPath | None = None
    components: JsonPath | None = None
    status: int = 200


@dataclass(frozen=True)
class Health:
    """The service's liveness and readiness endpoints, and which of them tells the truth."""

    liveness: Endpoint | None
    readiness: Endpoint | None
    truth: str  # "liveness" or "readiness": the one that tells the truth
    note: str = ""

    @property
    def truthful(self) -> Endpoint:
        found = self.readiness if self.truth == "readiness" else self.liveness
        assert found is not None  # the loader makes sure
        return found


@dataclass(frozen=True)
class Parameter:
    """A value the probe's templates use; each environment may have its own."""

    name: str
    type: str  # "string", "integer" or "secret"
    description: str = ""
    default: str | int | SecretRef | None = None
    environments: tuple[tuple[str, str | int | SecretRef], ...] = ()
    minimum: int | None = None
    maximum: int | None = None

    def value_for(self, environment: str) -> str | int | SecretRef | None:
        """This environment's value, else the default; None when neither is set."""
        return dict(self.environments).get(environment, self.default)


@dataclass(frozen=True)
class Login:
    """How the functional probe logs in: the request, and where the answer keeps the token."""

    method: str
    endpoint: str
    body: Mapping[str, Any]  # a JSON template: "{param}" strings are filled in
    token: JsonPath
    header: str = "Authorization"
    scheme: str = "Bearer"
    refused: int = 401  # the status that means wrong credentials

    def json(self, values: Mapping[str, Any]) -> Any:
        """The body to send; KeyError names a parameter without a value."""
        return fill_json(dict(self.body), values)


@dataclass(frozen=True)
class Request:
    """The functional probe's request: method, path and query, templates filled per environment."""

    method: str
    endpoint: str  # "/items/{item_id}"
    query: tuple[tuple[str, str], ...] = ()
    title: str = ""  # what operators call it ("item lookup")
    authenticated: bool = True  # send the login's token

    def target(self, values: Mapping[str, Any]) -> tuple[str, dict[str, str]]:
        """The path and the query parameters; KeyError names a parameter without a value."""
        path = fill(self.endpoint, values)
        if path is None:
            raise KeyError(self.endpoint)
        params = {}
        for key, template in self.query:
            value = fill(template, values)
            if value is None:
                raise KeyError(template)
            params[key] = value
        return path, params


@dataclass(frozen=True)
class FailureShape:
    """An answer that reports a failure in its body (``when``), and where it says what failed."""

    id: str
    title: str
    when: Predicate
    message: JsonPath | None = None  # where the answer says what failed


@dataclass(frozen=True)
class Mode:
    """A way the service may answer (legacy mode, …) and the effective flags under which it does."""

    id: str
    when: Predicate
    flags: tuple[tuple[str, bool], ...]  # effective flag values under which the service answers so
    title: str = ""

    def expected(self, effective: Mapping[str, bool]) -> bool:
        return all(effective[f] == v for f, v in self.flags)


@dataclass(frozen=True)
class Answer:
    """What one functional-probe answer is, by the profile's predicates."""

    kind: str  # "ok", "failed" (a failure shape) or "error" (not the answer the profile describes)
    message: str = ""
    failure: str | None = None  # the failure shape's id
    modes: tuple[str, ...] = ()
    data_present: bool | None = None
    count: int | float | None = None


@dataclass(frozen=True)
class AnswerSpec:
    """What the functional probe's answer must be: its status, envelope, failures and modes."""

    status: int
    envelope: tuple[Predicate, ...]
    failures: tuple[FailureShape, ...]
    shape: tuple[Predicate, ...]
    modes: tuple[Mode, ...]
    data_present: Predicate | None = None
    count: JsonPath | None = None
    count_label: str = ""
    error_detail: tuple[JsonPath, ...] = ()  # where a non-ok status says why

    def classify(self, status: int, body: Any) -> Answer:
        """Error, failure shape, or an answer with its modes: in that order, first match wins."""
        if status != self.status:
            detail = next((p.value(body) for p in self.error_detail if p.value(body)), None)
            said = f": {str(detail)[:200]}" if detail else ""
            return Answer("error", f"HTTP {status}, expected {self.status}{said}")
        for p in self.envelope:
            why = p.explain(body)
            if why:
                return Answer("error", f"HTTP {status} but {why}")
        for f in self.failures:
            if f.when.holds(body):
                said = f.message.value(body) if f.message else None
                text = said if isinstance(said, str) and said else f.title
                return Answer("failed", text[:300], failure=f.id, data_present=False)
        for p in self.shape:
            why = p.explain(body)
            if why:
                return Answer("error", f"HTTP {status} but {why}")
        modes = tuple(m.id for m in self.modes if m.when.holds(body))
        present = self.data_present.holds(body) if self.data_present else None
        count = self.count.value(body) if self.count else None
        count = count if isinstance(count, int | float) and not isinstance(count, bool) else None
        return Answer("ok", modes=modes, data_present=present, count=count)

    def expected_modes(self, effective: Mapping[str, bool]) -> tuple[str, ...]:
        return tuple(m.id for m in self.modes if m.expected(effective))


@dataclass(frozen=True)
class Probe:
    """The functional probe: one real request to the API (logged in where needed) and its answer judged."""

    title: str
    parameters: tuple[Parameter, ...]
    request: Request
    answer: AnswerSpec
    login: Login | None = None

    def parameter(self, name: str) -> Parameter:
        return next(p for p in self.parameters if p.name == name)


# --- the runbook's tables ---------------------------------------------------------------------


@dataclass(frozen=True)
class MemoryBands:
    """The process's memory levels: ok below one bound, a warning below the other, high above."""

    ok_below_mb: float
    warn_below_mb: float

    def level(self, rss_mb: float | None) -> str:
        if rss_mb is None:
            return "unknown"
        return "ok" if rss_mb < self.ok_below_mb else "warn" if rss_mb < self.warn_below_mb else "high"


@dataclass(frozen=True)
class MatrixRow:
    """A row of the runbook's decision matrix: a symptom, its severity, the action and its timeline."""

    symptom: str
    severity: str
    action: str  # an action id
    timeline: str
    signal: str | None = None  # None: a person declares the symptom
    above: float | None = None
    advice: str | None = None


@dataclass(frozen=True)
class DatabaseChange:
    """The schema change a database rollback undoes: table, columns, indexes and the scripts."""

    table: str
    columns: tuple[str, ...]
    indexes: tuple[str, ...]
    rollback_script: str  # relative to the service's repository, or absolute
    migration_script: str | None = None
    migration: str = ""  # its name in the runbook ("004")
    requires_off: tuple[str, ...] = ()  # flag ids that must be off before the columns go


@dataclass(frozen=True)
class Action:
    """A rollback the runbook names (quick, partial, full, database…): what it changes, its target."""

    id: str
    kind: str  # see vocabulary.ACTION_KINDS
    title: str
    short_title: str  # the decision matrix's words ("Quick rollback (disable all)")
    target: str = ""
    target_s: float | None = None
    data_loss: str = ""
    reversible: str = ""
    notes: tuple[str, ...] = ()
    turn_off: tuple[str, ...] = ()  # flags
    others: str = "unchanged"  # flags: the flags not turned off are "unchanged" or turned "on"
    commit_message: str | None = None  # code
    database: DatabaseChange | None = None  # database
    combines: tuple[str, ...] = ()  # combined: action ids, in order

    def flag_changes(self, flag_ids: tuple[str, ...]) -> dict[str, bool]:
        """What a flags action writes: its flags off, and the others on when others = "on"."""
        out = {f: False for f in self.turn_off}
        if self.others == "on":
            out.update({f: True for f in flag_ids if f not in self.turn_off})
        return {f: out[f] for f in flag_ids if f in out}


@dataclass(frozen=True)
class Validation:
    """One of the runbook's checks after a rollback, with its bound."""

    id: str
    title: str
    check: str  # see vocabulary.CHECK_KINDS
    below_s: float | None = None  # response_time
    below_mb: float | None = None  # memory
    window_lines: int | None = None  # errors
    max_error_lines: int | None = None  # errors


@dataclass(frozen=True)
class Remedy:
    """The fix the console may apply for the operator: the first alternative whose placeholders are all set."""

    title: str
    alternatives: tuple[tuple[str, ...], ...]

    def commands(self, values: Mapping[str, Any], quote: Callable[[str], str] | None = None) -> tuple[str, ...]:
        """The first alternative whose every placeholder has a value; () when none has."""
        for commands in self.alternatives:
            filled = [fill(c, values, quote) for c in commands]
            if all(f is not None for f in filled):
                return tuple(f for f in filled if f is not None)
        return ()


@dataclass(frozen=True)
class Issue:
    """A troubleshooting entry of the runbook: the problem, when it applies, and its fix."""

    id: str
    number: int
    title: str
    problem: str
    applies: tuple[str, ...]  # facts: the issue applies when any holds
    fix: tuple[str, ...]  # command lines and # comments, with {placeholders}
    remedy: Remedy | None = None

    @property
    def heading(self) -> str:
        return f"Issue {self.number}: {self.title}"

    def fix_lines(self, values: Mapping[str, Any], quote: Callable[[str], str] | None = None) -> tuple[str, ...]:
        """The fix as this environment would run it: a line with a placeholder it does not
        set is left out; a value of several lines (the manual SQL) gives several lines."""
        out: list[str] = []
        for line in self.fix:
            filled = fill(line, values, quote)
            if filled is not None:
                out.extend(filled.splitlines() or [""])
        return tuple(out)


@dataclass(frozen=True)
class ChecklistItem:
    """An item of the post-rollback checklist, and the validation or evidence that ticks it."""

    id: str
    text: str
    validation: str | None = None  # ticked when this validation passes
    evidence: str | None = None  # or by this evidence (vocabulary.EVIDENCE)

    @property
    def automatic(self) -> bool:
        return self.validation is not None or self.evidence is not None


@dataclass(frozen=True)
class Authorization:
    """Whether an environment kind's rollbacks need an approval, and from whom."""

    kind: str  # an environment kind: "staging", "production"
    approval: str  # "none" or "required"
    approver: str = ""


@dataclass(frozen=True)
class Fault:
    """A fault a drill puts on the simulator: values for an environment, or for one of its hosts."""

    environment: str
    values: tuple[tuple[str, Any], ...]
    host: int | None = None


@dataclass(frozen=True)
class Scenario:
    """A rehearsal drill: the briefing, the simulated faults, and the action it expects."""

    id: str
    title: str
    briefing: str
    environment: str
    expected_action: str
    accept: tuple[str, ...]
    target: str
    target_s: float
    source: str  # the file it was read from
    environments: tuple[str, ...] = ("staging", "production")
    hosts: int = 1
    database: bool = False
    faults: tuple[Fault, ...] = ()
    config_overlay: str = ""
    lesson: str = ""


@dataclass(frozen=True)
class ServiceInfo:
    """Which service, feature and runbook the profile describes."""

    id: str
    title: str
    service: str
    feature: str = ""
    runbook: str = ""
    version: str = ""


@dataclass(frozen=True)
class Profile:
    """Everything the console knows about one service: flags, log, probes, the runbook's rules."""

    path: str
    info: ServiceInfo
    flags: FlagRules
    log: LogFormat
    process: ProcessSpec
    health: Health
    probe: Probe
    memory: MemoryBands
    matrix: tuple[MatrixRow, ...]
    actions: tuple[Action, ...]
    validations: tuple[Validation, ...]
    troubleshooting: tuple[Issue, ...]
    checklist: tuple[ChecklistItem, ...]
    contacts: tuple[Contact, ...] = ()
    escalation: tuple[EscalationLevel, ...] = ()
    authorization: tuple[Authorization, ...] = ()
    emergency_levels: tuple[str, ...] = ()
    authorization_note: str = ""
    scenarios: tuple[Scenario, ...] = ()
    drill_directory: str | None = None  # scenario files, besides those written in the profile

    def action(self, action_id: str) -> Action:
        try:
            return next(a for a in self.actions if a.id == action_id)
        except StopIteration:
            raise KeyError(f"no action {action_id!r} in {self.path}") from None

    def issue(self, issue_id: str) -> Issue:
        try:
            return next(i for i in self.troubleshooting if i.id == issue_id)
        except StopIteration:
            raise KeyError(f"no troubleshooting issue {issue_id!r} in {self.path}") from None

    def issue_for(self, fact: str) -> Issue | None:
        """The first issue that applies when ``fact`` holds (a failed step names its issue so)."""
        return next((i for i in self.troubleshooting if fact in i.applies), None)

    @property
    def rollbacks(self) -> tuple[Action, ...]:
        """The actions that change something (not advice)."""
        return tuple(a for a in self.actions if a.kind != "advice")

    @property
    def base(self) -> Path:
        return Path(self.path).resolve().parent
