"""Every bad input in a profile is reported as FILE:LINE: key: message, in one pass.

Each case edits a shipped profile (Phase 4 or searchd) the way an author's typo would,
loads it, and expects the problem at the key's own line (or, for a missing key, its
table's), with words that say what is wrong and, for a near miss, what was meant.
"""

from __future__ import annotations

import re
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

from console.profile import PROFILE_DIR, ProfileError, load_profile

BASES = {"phase4": PROFILE_DIR / "analyticbot-phase4.toml", "searchd": PROFILE_DIR / "searchd-semantic.toml"}
DRILLS = PROFILE_DIR.parent / "drills"


@dataclass(frozen=True)
class Case:
    name: str
    edits: tuple[tuple[str, str], ...]  # (old, new): each old must be in the text
    key: str
    says: str
    line_of: str  # the expected line: where this text starts …
    offset: int = 0  # … plus this many lines (a missing key is reported at its table's header)
    base: str = "phase4"
    only: bool = True  # this is the only problem (no cascade of noise)


def edit(old: str, new: str) -> tuple[tuple[str, str], ...]:
    return ((old, new),)


FLAG_BLOCK = '[[flags.flag]]\nid = "x{n}"\nenv = "ENABLE_X{n}"\nlabel = "X{n}"\ndepends_on = "advanced"\n\n'
# fmt: off
CASES = [
    Case('unknown key, did you mean', edit('label = "Advanced"', 'label = "Advanced"\nlable = "Advanced"'),
         'flags.flag[0].lable', 'unknown key (did you mean `label`?)', 'lable ='),
    Case('unknown table, did you mean', edit('[memory]', '[helth]\nnote = 1\n\n[memory]'), 'helth',
         'unknown key (did you mean `health`?)', '[helth]'),
    Case('a number written as a string', edit('target_s = 60', 'target_s = "60"'), 'actions[0].target_s',
         "expected a number, got a string '60'", 'target_s = "60"'),
    Case('true/false written as a word', edit('case_sensitive = false', 'case_sensitive = "no"'),
         'flags.read.case_sensitive', "expected true/false, got a string 'no'", 'case_sensitive ='),
    Case('an unknown format', edit('format = 1', 'format = 2'), 'profile.format', 'this console reads format 1',
         'format = 2'),
    Case('a missing required key', edit('title = "Phase 4 Rollback Procedures"\n', ''), 'profile.title',
         'required key is missing', '[profile]'),
    Case('master is not a flag', edit('master = "advanced"', 'master = "advance"'), 'flags.master',
         "'advance' is not a flag (did you mean 'advanced'?); flags: advanced, time_weighting", 'master = "advance"'),
    Case('a dependency cycle',
         (('master = "advanced"', ''), ('label = "Advanced"', 'label = "Advanced"\ndepends_on = "content_type"')),
         'flags.flag[0].depends_on', 'dependency cycle: advanced → content_type → advanced',
         'depends_on = "content_type"'),
    Case('a flag depending on itself',
         (('master = "advanced"', ''), ('label = "Advanced"', 'label = "Advanced"\ndepends_on = "advanced"')),
         'flags.flag[0].depends_on', 'a flag cannot depend on itself', 'label = "Advanced"', 1),
    Case('depends on an unknown flag',
         edit('depends_on = "advanced"\ndescription = "time', 'depends_on = "advnced"\ndescription = "time'),
         'flags.flag[1].depends_on', "'advnced' is not a flag (did you mean 'advanced'?)", '"advnced"'),
    Case('a flag outside the master', edit('depends_on = "advanced"\ndescription = "content', 'description = "content'),
         'flags.flag[2].id', "does not depend on the master 'advanced'", 'id = "content_type"'),
    Case('one flag is refused', edit('[[flags.flag]]\nid = "reranker"', '[[flags.gone]]\nid = "reranker"'),
         'flags.flag', 'a profile has 2 to 6 flags; this one has 1', '[[flags.flag]]', base="searchd", only=False),
    Case("seven flags are refused",
         edit("# The log:", "".join(FLAG_BLOCK.format(n=n) for n in range(4)) + "# The log:"),
         "flags.flag", "a profile has 2 to 6 flags; this one has 7", "[[flags.flag]]", only=False),
    Case('a flag id that cannot be a placeholder', edit('id = "advanced"', 'id = "Advanced-1"'), 'flags.flag[0].id',
         "'Advanced-1' is not an id", 'id = "Advanced-1"', only=False),
    Case('two flags with one env name', edit('env = "ENABLE_TIME_WEIGHTING"', 'env = "ENABLE_CONTENT_TYPE_ANALYSIS"'),
         'flags.flag[2].env', "'ENABLE_CONTENT_TYPE_ANALYSIS' is used twice",
         'env = "ENABLE_CONTENT_TYPE_ANALYSIS"\nlabel = "Content'),
    Case('a written off value the service reads as on', edit('off = "false"', 'off = "TRUE"'), 'flags.write.off',
         "the service would read 'TRUE' as on (on_words: true)", 'off = "TRUE"'),
    Case('an env name that is not a variable', edit('env = "ENABLE_RERANKER"', 'env = "ENABLE RERANKER"'),
         'flags.flag[1].env', 'is not a variable name', 'env = "ENABLE RERANKER"', base="searchd"),
    Case('the flag line misses a flag', edit(', Content-type: {content_type}"', '"'), 'log.flag_line.template',
         "flag 'content_type' is not in the line", 'template = '),
    Case('the flag line names no flag', edit('Advanced: {advanced}', 'Advanced: {advance}'), 'log.flag_line.template',
         "'advance' is not a flag (did you mean 'advanced'?)", 'template = ', only=False),
    Case('a lone brace in the flag line',
         edit('template = "Feature flags - Advanced', 'template = "Feature flags { Advanced'), 'log.flag_line.template',
         "a lone '{' at column 15 (write {{ for a literal brace)", 'template = '),
    Case('on and off the same word', edit('off = "False"', 'off = "True"'), 'log.flag_line.off',
         "on and off must differ (both are 'True')", 'off = "True"'),
    Case('a plain line without the message',
         edit('line = "[{level}] {logger}: {message}"', 'line = "[{level}] {logger}:"'), 'log.plain.line',
         'the line needs {message}', 'line = "[{level}]'),
    Case('a plain line with an unknown field', edit('line = "{time} {level}', 'line = "{timestamp} {level}'),
         'log.plain.line', "{timestamp} is not a log field (did you mean 'time'?)", 'line = "{timestamp}',
         base="searchd"),
    Case('a mode line for no mode', edit('legacy = "Using SIMPLE', 'legacyy = "Using SIMPLE'), 'log.mode_lines.legacyy',
         "'legacyy' is not a mode (did you mean 'legacy'?)", 'legacyy ='),
    Case('an environ path without the pid', edit('environ = "/proc/{pid}/environ"', 'environ = "/proc/self/environ"'),
         'process.environ', 'has no {pid}', 'environ = '),
    Case('an endpoint written as a URL', edit('endpoint = "/health"', 'endpoint = "http://localhost:10300/health"'),
         'health.liveness.endpoint', 'is a URL: write the path only', 'endpoint = "http://'),
    Case('the truth names a missing endpoint', edit('truth = "liveness"', 'truth = "readiness"'), 'health.truth',
         'there is no [health.readiness] to tell the truth', 'truth = ', base="searchd"),
    Case('a predicate path that is not a path',
         edit('{ path = "data.status", equals = "failed" }', '{ path = "data..status", equals = "failed" }'),
         'probe.failures[0].when.path', "'data..status' is not a path: write names joined by dots", 'data..status'),
    Case('an unknown predicate test',
         edit('{ path = "data.best_times", non_empty = true }', '{ path = "data.best_times", nonempty = true }'),
         'probe.answer.data_present.all[0].nonempty', "unknown predicate test (did you mean 'non_empty'?)",
         'data_present ='),
    Case('an unknown JSON type', edit('type = "integer", at_least = 0', 'type = "int", at_least = 0'),
         'probe.answer.shape[0].type', "'int' is not a JSON type (did you mean 'integer'?)",
         '{ path = "data.total_posts_analyzed", type = "int"'),
    Case('a test with the wrong argument',
         edit('{ path = "results", non_empty = true }', '{ path = "results", non_empty = "yes" }'),
         'probe.answer.data_present.non_empty', "`non_empty` takes true or false, got 'yes'", 'data_present =',
         base="searchd"),
    Case('an empty any', edit('when = { path = "success", equals = false }', 'when = { any = [] }'),
         'probe.failures[1].when.any', '`any` takes a non-empty list of predicates', 'when = { any'),
    Case('a predicate written as an expression',
         edit('when = { path = "success", equals = false }', 'when = "success == false"'), 'probe.failures[1].when',
         'expected a predicate like', 'when = "success'),
    Case('a mode naming no flag', edit('flags = { advanced = false }', 'flags = { advancd = false }'),
         'probe.modes[1].flags.advancd', "'advancd' is not a flag (did you mean 'advanced'?)", 'flags = { advancd'),
    Case('a request naming no parameter', edit('/best-times/{channel_id}', '/best-times/{chanel_id}'),
         'probe.request.endpoint', "'chanel_id' is not a parameter (did you mean 'channel_id'?)",
         'endpoint = "/analytics', only=False),
    Case('a secret in the query', edit('query = { days = "{days}" }', 'query = { days = "{days}", pw = "{password}" }'),
         'probe.request.query.pw', '{password} is a secret: it goes in the login body only', 'query = '),
    Case('a parameter nothing uses',
         edit('[probe.login]', '[probe.parameters.extra]\ntype = "string"\ndefault = "x"\n\n[probe.login]'),
         'probe.parameters.extra', 'declared but no template of the probe uses it', '[probe.parameters.extra]'),
    Case('a parameter out of its range', edit('default = 90', 'default = 9000'), 'probe.parameters.days.default',
         'must be between 1 and 3650', 'default = 9000'),
    Case('a secret written in the profile',
         edit('staging = { env = "ANALYTICBOT_STAGING_PASSWORD" }', 'staging = "hunter2"'),
         'probe.parameters.password.environments.staging', 'secrets are never written in a profile',
         'environments = { staging = "hunter2'),
    Case('a token path that is not a path', edit('token = "access_token"', 'token = ".access_token"'),
         'probe.login.token', "'.access_token' is not a path", 'token = '),
    Case('an authenticated request without a login', edit('authenticated = false', 'authenticated = true'),
         'probe.request.authenticated', 'there is no [probe.login] to take a token from', 'authenticated = true',
         base="searchd"),
    Case('a matrix row naming no action', edit('action = "check-flags"', 'action = "check-flag"'), 'matrix[4].action',
         "'check-flag' is not an action (did you mean 'check-flags'?)", 'action = "check-flag"'),
    Case('a numeric signal without a threshold', edit('above = 0.05\n', ''), 'matrix[1].above',
         "signal 'error_rate' needs a threshold: above = …", 'symptom = "Error rate > 5%"', -1),
    Case('a true/false signal with a threshold', edit('signal = "missing_data"', 'signal = "missing_data"\nabove = 1'),
         'matrix[4].above', "signal 'missing_data' is true or false: it takes no threshold", 'above = 1'),
    Case('an unknown signal', edit('signal = "memory_mb"', 'signal = "memory"'), 'matrix[2].signal',
         "'memory' is not one of: response_time_s, error_rate, memory_mb", 'signal = "memory"', only=False),
    Case('an unknown severity', edit('severity = "LOW"', 'severity = "low"'), 'matrix[4].severity',
         "'low' is not one of: HIGH, MEDIUM, LOW (did you mean 'LOW'?)", 'severity = "low"'),
    Case('an action turning off an unknown flag', edit('turn_off = ["time_weighting"]', 'turn_off = ["time_weigting"]'),
         'actions[1].turn_off', "'time_weigting' is not a flag (did you mean 'time_weighting'?)",
         'turn_off = ["time_weigting"]'),
    Case('an action turning off nothing', edit('turn_off = ["reranker"]', 'turn_off = []'), 'actions[1].turn_off',
         'names no flag', 'turn_off = []', base="searchd"),
    Case('a key of another kind of action',
         edit('short_title = "Quick rollback (disable all)"', 'short_title = "Quick"\ncommit_message = "x"'),
         'actions[0].commit_message', '`commit_message` is for kind = "code" actions; this one is kind = "flags"',
         'commit_message = "x"'),
    Case('an advice with a target', edit('title = "Investigate"', 'title = "Investigate"\ntarget = "< 1 min"'),
         'actions[6].target', 'an advice action changes nothing', 'target = "< 1 min"\n\n'),
    Case('an unknown action kind',
         edit('kind = "advice"\ntitle = "Investigate"', 'kind = "advise"\ntitle = "Investigate"'), 'actions[6].kind',
         "'advise' is not one of: flags, code, database, combined, advice (did you mean 'advice'?)", 'kind = "advise"'),
    Case('a combined action naming no action',
         edit('combines = ["quick", "code", "database"]', 'combines = ["quick", "code", "databse"]'),
         'actions[5].combines', "'databse' is not an action (did you mean 'database'?)", 'combines = '),
    Case('a combined action combining advice',
         edit('combines = ["quick", "code", "database"]', 'combines = ["quick", "investigate"]'), 'actions[5].combines',
         '\'investigate\' is an action of kind = "advice"', 'combines = '),
    Case('two actions with one id', edit('id = "partial-content-type"', 'id = "partial-time-weighting"'),
         'actions[2].id', "'partial-time-weighting' is used twice",
         'id = "partial-time-weighting"\nkind = "flags"\ntitle = "Partial rollback B'),
    Case('a database action without columns', edit('columns = ["has_video", "has_media"]', 'columns = []'),
         'actions[4].columns', 'needs at least one name', 'columns = []'),
    Case('a database action requiring an unknown flag off',
         edit('requires_off = ["advanced", "time_weighting", "content_type"]', 'requires_off = ["content"]'),
         'actions[4].requires_off', "'content' is not a flag (did you mean 'content_type'?)", 'requires_off = '),
    Case('memory bands the wrong way round', edit('warn_below_mb = 1000', 'warn_below_mb = 400'),
         'memory.warn_below_mb', 'must be above ok_below_mb (500): ok < warn < high', 'warn_below_mb = 400'),
    Case('an unknown check', edit('check = "probe"', 'check = "probes"'), 'validations[2].check',
         "'probes' is not one of: health, flags, probe", 'check = "probes"'),
    Case('a threshold of another check', edit('max_error_lines = 0', 'max_error_lines = 0\nbelow_s = 2.0'),
         'validations[3].below_s', '`below_s` is a threshold of check = "response_time", not of "errors"',
         'below_s = 2.0 '),
    Case('a checklist item naming no validation',
         edit('validation = "recommendations"', 'validation = "recomendations"'), 'checklist[4].validation',
         "'recomendations' is not a validation (did you mean 'recommendations'?)", 'validation = "recomendations"'),
    Case('a checklist item ticked two ways',
         edit('evidence = "notified"', 'evidence = "notified"\nvalidation = "health"'), 'checklist[6].evidence',
         'by a validation or by evidence, not both', 'evidence = "notified"'),
    Case('unknown evidence', edit('evidence = "report_written"', 'evidence = "report"'), 'checklist[7].evidence',
         "'report' is not one of: notified, report_written (did you mean 'report_written'?)", 'evidence = "report"'),
    Case('applies names no fact', edit('applies = ["stale_process"]', 'applies = ["stale_proces"]'),
         'troubleshooting[0].applies', "'stale_proces' is not a fact (did you mean 'stale_process'?)", 'applies = '),
    Case('a fact the profile cannot have',
         edit('applies = ["log_flag_mismatch"]', 'applies = ["partial_flag_mismatch"]'), 'troubleshooting[2].applies',
         "'partial_flag_mismatch' needs flags that depend on another (depends_on)", 'applies = ["partial',
         base="searchd"),
    Case('a fix naming no placeholder', edit('"{service_log_command}",\n  "# 1.', '"{service_log}",\n  "# 1.'),
         'troubleshooting[1].fix[0]', "'service_log' is not a placeholder (did you mean 'service_log_command'?)",
         '"{service_log}"'),
    Case('a fix written for the shell',
         edit('"# 3. database connection error → check DATABASE_URL"', '"psql ${DATABASE_URL}"'),
         'troubleshooting[1].fix[3]', '(for the shell, write $VAR, not ${VAR})', '"psql ${DATABASE_URL}"'),
    Case('a database placeholder without a database',
         edit('"{service_log_command}",\n  "# an index', '"{manual_sql}",\n  "# an index'), 'troubleshooting[1].fix[0]',
         '{manual_sql} needs an action of kind = "database"', '"{manual_sql}"', base="searchd"),
    Case('two issues with one number', edit('number = 4', 'number = 3'), 'troubleshooting[3].number', '3 is used twice',
         'number = 3\ntitle = "Partial'),
    Case('a remedy that is not lists of commands',
         edit('[["{force_restart_command}"], [', '["{force_restart_command}", ['),
         'troubleshooting[0].remedy.alternatives', 'item #1 must be a list of commands', 'alternatives = '),
    Case('an escalation naming no role', edit('contacts = ["DBA"]', 'contacts = ["DBAs"]'), 'escalation[2].contacts',
         "'DBAs' is not a role (did you mean 'DBA'?)", 'contacts = ["DBAs"]'),
    Case('an authorization for one kind only',
         edit('[authorization.staging]\napproval = "none"', '[authorization.other]\napproval = "none"'),
         'authorization.staging', 'say who authorizes a rollback in staging', '[authorization]', only=False),
    Case('an unknown approval', edit('approval = "required"', 'approval = "yes"'), 'authorization.production.approval',
         "'yes' is not one of: none, required", 'approval = "yes"'),
    Case('a fault caused by no flag', edit('caused_by = "semantic"', 'caused_by = "semantik"'),
         'drills.scenario[0].faults[0].caused_by', "'semantik' is not a flag (did you mean 'semantic'?)",
         'caused_by = ', base="searchd"),
    Case("a fault the simulator has not", edit("memory_mb = 1400", "memory_mbs = 1400"),
         "drills.scenario[0].faults[0].memory_mbs", "unknown key (did you mean `memory_mb`?)", "memory_mbs",
         base="searchd"),
    Case('a drill expecting advice', edit('expected_action = "semantic-off"', 'expected_action = "investigate"'),
         'drills.scenario[0].expected_action', "'investigate' is not a rollback action", 'expected_action = ',
         base="searchd"),
    Case('a drill fault out of range', edit('memory_mb = 1400', 'memory_mb = 1400\nerror_rate = 2'),
         'drills.scenario[0].faults[0].error_rate', 'a fraction from 0 to 1, got 2', 'error_rate = 2', base="searchd"),
    Case('a drill needing a database the profile has not',
         edit('target_s = 120\nlesson', 'target_s = 120\ndatabase = true\nlesson'), 'drills.scenario[0].database',
         'this profile has no action of kind = "database"', 'database = true', base="searchd"),
    Case('a drill directory that is not there', edit('directory = "../drills"', 'directory = "../drill"'),
         'drills.directory', 'is not a directory', 'directory = '),
]
# fmt: on


def text_of(base: str) -> str:
    """The shipped profile with its drill directory made absolute (the copy lives elsewhere)."""
    return BASES[base].read_text(encoding="utf-8").replace('directory = "../drills"', f'directory = "{DRILLS}"')


def load_edited(tmp_path: Path, base: str, edits: tuple[tuple[str, str], ...]) -> tuple[Path, str, ProfileError]:
    text = text_of(base)
    for old, new in edits:
        if old == 'directory = "../drills"':
            old = f'directory = "{DRILLS}"'
            new = new.replace('"../drill"', f'"{DRILLS}-missing"')
        assert old in text, f"the edit's text is not in the {base} profile: {old!r}"
        text = text.replace(old, new, 1)
    path = tmp_path / f"{base}.toml"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(ProfileError) as caught:
        load_profile(path)
    return path, text, caught.value


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_bad_input_is_reported_with_file_line_and_key(case: Case, tmp_path: Path) -> None:
    path, text, error = load_edited(tmp_path, case.base, case.edits)
    assert case.line_of in text
    line = text[: text.index(case.line_of)].count("\n") + 1 + case.offset
    said = [str(p) for p in error.problems]
    wanted = re.compile(rf"^{re.escape(str(path))}:{line}: {re.escape(case.key)}: .*{re.escape(case.says)}")
    assert any(wanted.match(s) for s in said), (
        f"expected {case.key!r} at line {line}: {case.says!r}; got\n" + "\n".join(said)
    )
    if case.only:
        assert len(said) == 1, "\n".join(said)
    for problem in error.problems:  # every problem says where (a renamed flag also shows in the drill files)
        assert problem.file in (str(path), *map(str, DRILLS.glob("*.toml")))
        assert problem.line and problem.key and problem.message


def test_every_problem_in_one_pass(tmp_path: Path) -> None:
    """Three unrelated typos: three problems, in the order of the file."""
    edits = (
        ('master = "advanced"', 'master = "advance"'),
        ('applies = ["stale_process"]', 'applies = ["stale_proces"]'),
        ('action = "check-flags"', 'action = "check-flag"'),
    )
    _, _, error = load_edited(tmp_path, "phase4", edits)
    assert [p.key for p in error.problems] == ["flags.master", "matrix[4].action", "troubleshooting[0].applies"]
    assert [p.line for p in error.problems] == sorted(p.line or 0 for p in error.problems)


def test_not_toml_says_the_line(tmp_path: Path) -> None:
    path, text, error = load_edited(tmp_path, "phase4", (('title = "Health check"', 'title = "Health check'),))
    line = text.split("\n").index('title = "Health check') + 1
    (problem,) = error.problems
    assert (problem.file, problem.line, problem.key) == (str(path), line, "")
    assert str(problem).startswith(f"{path}:{line}: not valid TOML: ")


def test_a_bad_drill_file_is_reported_with_its_own_path(tmp_path: Path) -> None:
    drills = tmp_path / "drills"
    drills.mkdir()
    scenario = (DRILLS / "latency.toml").read_text(encoding="utf-8")
    (drills / "latency.toml").write_text(scenario.replace('caused_by = "advanced"', 'caused_by = "advancd"'), "utf-8")
    (drills / "broken.toml").write_text('[drill]\nid = "broken"\nexpected_action = "quik"\n', "utf-8")
    text = text_of("phase4").replace(f'directory = "{DRILLS}"', f'directory = "{drills}"')
    profile = tmp_path / "p.toml"
    profile.write_text(text, "utf-8")
    with pytest.raises(ProfileError) as caught:
        load_profile(profile)
    said = [str(p) for p in caught.value.problems]
    line = next(n for n, row in enumerate(scenario.split("\n"), 1) if row.startswith("caused_by"))
    flags = "flags: advanced, time_weighting, content_type"
    actions = "actions: quick, partial-time-weighting, partial-content-type, code, database, full"
    latency = f"{drills / 'latency.toml'}:{line}: faults[0].caused_by: "
    assert f"{latency}'advancd' is not a flag (did you mean 'advanced'?); {flags}" in said
    broken = f"{drills / 'broken.toml'}:3: drill.expected_action: "
    assert f"{broken}'quik' is not a rollback action (did you mean 'quick'?); {actions}" in said
    assert any(s.startswith(f"{drills / 'broken.toml'}:1: drill.title: required key is missing") for s in said)
    assert all(s.startswith(str(drills)) for s in said), said


def test_six_flags_are_allowed(tmp_path: Path) -> None:
    text = text_of("searchd")
    extra = "".join(f'[[flags.flag]]\nid = "x{n}"\nenv = "ENABLE_X{n}"\nlabel = "x{n}"\n\n' for n in range(4))
    text = text.replace("\n[log]\n", "\n" + extra + "[log]\n", 1)
    text = text.replace("reranker={reranker}", "reranker={reranker} " + " ".join(f"x{n}={{x{n}}}" for n in range(4)))
    path = tmp_path / "six.toml"
    path.write_text(text, "utf-8")
    profile = load_profile(path)
    assert len(profile.flags.flags) == 6
    line = "flags: semantic=on reranker=off x0=on x1=off x2=on x3=off"
    assert profile.log.flag_line.parse(line) == {"semantic": True, "reranker": False, "x0": True, "x1": False,
                                                 "x2": True, "x3": False}  # fmt: skip


def test_a_file_that_is_not_a_profile(tmp_path: Path) -> None:
    fifo = tmp_path / "fifo.toml"
    import os

    os.mkfifo(fifo)
    with pytest.raises(ProfileError, match=r"cannot read profile: .*named pipe"):
        load_profile(fifo)
    empty = tmp_path / "empty.toml"
    empty.write_text("", "utf-8")
    with pytest.raises(ProfileError) as caught:
        load_profile(empty)
    keys = {p.key for p in caught.value.problems}
    assert {"profile", "flags", "log", "health", "probe", "memory", "matrix", "actions", "validations"} <= keys


def _validate(path: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "console", "config", "validate", str(path)],
        capture_output=True,
        text=True,
        timeout=60,
        stdin=subprocess.DEVNULL,
    )


def test_config_validate_reads_profiles_as_well_as_configs(tmp_path: Path) -> None:
    """`rollback-console config validate` tells a profile from a config by its [profile] table."""
    for path in sorted(PROFILE_DIR.glob("*.toml")):
        done = _validate(path)
        assert done.returncode == 0, done.stderr
        assert done.stdout.startswith(f"{path}: ok — profile ") and " flags (" in done.stdout
    path, _, error = load_edited(tmp_path, "phase4", (('master = "advanced"', 'master = "advance"'),))
    done = _validate(path)
    assert done.returncode == 2 and done.stdout == ""
    assert [line for line in done.stderr.splitlines() if line.startswith(f"{path}:")] == [
        *map(str, error.problems),
        f"{path}: 1 problem(s): the profile cannot be used",
    ]
    assert "Traceback" not in done.stderr
    config = _validate(Path(PROFILE_DIR).parent / "analyticbot.toml")  # a config is still a config
    assert config.returncode == 0 and "staging (staging" in config.stdout
