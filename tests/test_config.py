"""Config loading and validation: what an operator sees for a good and for a bad file."""

from __future__ import annotations

import subprocess
import sys
import tomllib
from pathlib import Path
from typing import Any

import pytest

from console.config import ConfigError, SecretError, SecretRef, Thresholds, find_config, load_config
from console.config.locate import key_lines, locate
from console.config.model import ChecklistItem, Host
from console.runbook.checklist import checklist_of
from console.runbook.matrix import matrix_of
from console.runbook.people import people_of

ROOT = Path(__file__).resolve().parent.parent
SAMPLE = ROOT / "sample_configs" / "analyticbot.toml"

# The runbook's tables, transcribed from runbook/phase4-rollback-procedures.md.
RUNBOOK_MATRIX = [  # symptom, severity, action (as the runbook says it), timeline
    ("Response time > 5s", "HIGH", "Quick rollback (disable all)", "< 1 min"),
    ("Error rate > 5%", "HIGH", "Quick rollback (disable all)", "< 1 min"),
    ("Memory usage > 2GB", "MEDIUM", "Partial rollback (disable time-weighting)", "< 2 min"),
    ("Incorrect recommendations", "MEDIUM", "Investigate, consider partial rollback", "< 5 min"),
    ("Missing data in response", "LOW", "Check feature flag settings", "< 5 min"),
    ("Code bugs", "HIGH", "Full code rollback", "< 10 min"),
]
# How each runbook action is written in the config: the action, and advice shown with it.
RUNBOOK_ACTIONS = {
    "Quick rollback (disable all)": ("quick", None),
    "Partial rollback (disable time-weighting)": ("partial-time-weighting", None),
    "Investigate, consider partial rollback": ("partial-time-weighting", "Investigate, consider partial rollback"),
    "Check feature flag settings": ("check-flags", "Check feature flag settings"),
    "Full code rollback": ("code", None),
}
# Which rows a machine can see, and above what.
RUNBOOK_SIGNALS = {
    "Response time > 5s": ("response_time_s", 5.0),
    "Error rate > 5%": ("error_rate", 0.05),
    "Memory usage > 2GB": ("memory_mb", 2048.0),
    "Missing data in response": ("missing_data", None),
}
RUNBOOK_CHECKLIST = [
    "Health endpoint responding (200 OK)",
    "Feature flags confirmed in logs as this rollback leaves them",  # true of a partial one too
    "No errors in the log since the rollback (last 100 lines at most)",  # what is checked
    "Response times < 2 seconds",
    "Test recommendations returning data",
    "Monitoring dashboards showing normal metrics",
    "Alert channels notified of rollback",
    "Incident report created (if applicable)",
    "Root cause analysis scheduled",
]
# Checklist items that only a person can tick.
BY_HAND = {"Monitoring dashboards showing normal metrics", "Root cause analysis scheduled"}
RUNBOOK_ESCALATION = [
    (1, "Ops team attempts quick rollback (disable flags)"),
    (2, "Contact on-call developer if rollback doesn't resolve"),
    (3, "DBA involved if database issues persist"),
    (4, "Full team escalation for code rollback"),
]

MINIMAL = """\
[environments.staging]
kind = "staging"
api_url = "http://localhost:10300/"
channel_id = -1001234567890
login_email = "ops-probe@analyticbot.example"
password = { env = "ANALYTICBOT_STAGING_PASSWORD" }
env_file = "/opt/analyticbot/.env.staging"
restart_command = "sudo systemctl restart analyticbot-api"
pid_command = "systemctl show -p MainPID --value analyticbot-api"
log_file = "/var/log/analyticbot/staging.log"
"""
TWO_HOSTS = """
[hosts.prod-api-1]
address = "10.30.1.21"

[hosts.prod-api-2]
address = "10.30.1.22"
"""


def write(tmp_path: Path, text: str | bytes, name: str = "console.toml") -> Path:
    path = tmp_path / name
    if isinstance(text, bytes):
        path.write_bytes(text)
    else:
        path.write_text(text, encoding="utf-8")
    return path


def problems(tmp_path: Path, text: str | bytes) -> list[tuple[int | None, str, str]]:
    """(line, key, message) of every problem, in the order the operator reads them."""
    path = write(tmp_path, text)
    with pytest.raises(ConfigError) as info:
        load_config(path)
    assert all(p.file == str(path) for p in info.value.problems)
    assert str(info.value) == "\n".join(str(p) for p in info.value.problems)
    return [(p.line, p.key, p.message) for p in info.value.problems]


def runbook_matrix_as_config() -> list[tuple[Any, ...]]:
    out = []
    for symptom, severity, said, timeline in RUNBOOK_MATRIX:
        action, advice = RUNBOOK_ACTIONS[said]
        signal, above = RUNBOOK_SIGNALS.get(symptom, (None, None))
        out.append((symptom, severity, action, timeline, signal, above, advice))
    return out


def matrix_rows(config: Any, env: str = "staging") -> list[tuple[Any, ...]]:
    """The rows that decide for ``env``: the config's [[decision_matrix]], else its profile's."""
    rows = matrix_of(config, config.environment(env)).rows
    return [(r.symptom, r.severity, r.action, r.timeline, r.signal, r.above, r.advice) for r in rows]


# ---------------------------------------------------------------------------
# The sample config and the defaults
# ---------------------------------------------------------------------------


def test_sample_config_validates_and_its_values_come_through() -> None:
    config = load_config(SAMPLE)
    assert list(config.environments) == ["staging", "production"]

    staging = config.environment("staging")
    assert staging.kind == "staging" and not staging.is_production
    assert [h.describe() for h in staging.hosts] == ["deploy@10.20.1.15"]
    (host,) = staging.hosts
    assert host.key_file == str(Path("~/.ssh/id_ed25519").expanduser())
    assert host.known_hosts == str(Path("~/.ssh/known_hosts").expanduser())
    assert host.connect_timeout == 10.0
    assert staging.api_url == "http://localhost:10300"
    assert staging.channel_id == -1001234567890
    assert staging.days == 90
    assert staging.password == SecretRef(env="ANALYTICBOT_STAGING_PASSWORD")
    assert staging.log_file == "/var/log/analyticbot/staging.log" and staging.log_command is None
    assert staging.reload_command == "sudo systemctl daemon-reload"
    assert staging.database is not None
    assert staging.database.dsn == SecretRef(env="ANALYTICBOT_STAGING_DSN")
    assert staging.database.rollback_script == "/opt/analyticbot/infra/db/migrations/004_rollback.sql"
    assert staging.database.columns == ("has_video", "has_media")
    assert staging.database.indexes == ("idx_posts_content_type", "idx_posts_date_content")

    production = config.environment("production")
    assert production.is_production
    assert [h.describe() for h in production.hosts] == ["deploy@10.30.1.21", "deploy@10.30.1.22"]
    assert production.password == SecretRef(file="/etc/rollback-console/production.password")
    assert production.log_command == "journalctl -u analyticbot-api -n {lines} --no-pager -o cat"
    assert (production.fleet.mode, production.fleet.concurrency, production.fleet.batch_size) == ("rolling", 10, 1)
    assert production.fleet.stop_on_first_failure is False
    assert production.database is not None
    assert production.database.dsn == SecretRef(file="/etc/rollback-console/production.dsn")
    assert production.database.table == "posts"

    assert matrix_rows(config) == runbook_matrix_as_config()
    assert [item.text for item in checklist_of(config, "staging")] == RUNBOOK_CHECKLIST
    assert [(c.role, c.name) for c in config.contacts] == [
        ("Lead Developer", "Dana Whitfield"),
        ("DevOps", "Ops rotation"),
        ("DBA", "DBA on-call"),
    ]
    escalation = people_of(config, "staging")[1]  # the profile's: the sample names contacts only
    assert [(e.level, e.description) for e in escalation] == RUNBOOK_ESCALATION
    assert escalation[3].contacts == ("Lead Developer", "DevOps", "DBA")
    assert config.notifications.webhook == SecretRef(env="ROLLBACK_CONSOLE_WEBHOOK")
    assert config.journal_path == Path("/var/lib/rollback-console/journal.jsonl")
    # The sample writes the defaults out; they count as the config's own (they win over a profile's).
    assert config.thresholds == Thresholds(given=config.thresholds.given)
    assert "response_time_ok_s" in config.thresholds.given


def test_sample_config_environment_lookup_names_the_known_ones() -> None:
    config = load_config(SAMPLE)
    with pytest.raises(KeyError, match=r"no environment 'prod' in .*analyticbot.toml \(known: staging, production\)"):
        config.environment("prod")


def test_minimal_config_gets_the_runbook_defaults(tmp_path: Path) -> None:
    config = load_config(write(tmp_path, MINIMAL))
    env = config.environment("staging")
    assert env.hosts == (Host(name="local"),) and env.hosts[0].is_local
    assert env.api_url == "http://localhost:10300"  # trailing slash dropped
    assert env.days is None  # not set here: the profile's default, ?days=90, applies
    assert env.database is None
    assert (env.fleet.mode, env.fleet.concurrency) == ("parallel", 10)
    assert env.phase4_commit_message is None  # the profile's code rollback names the commit

    assert matrix_rows(config) == runbook_matrix_as_config()
    assert [item.text for item in checklist_of(config, "staging")] == RUNBOOK_CHECKLIST
    assert {item.text for item in checklist_of(config, "staging") if item.check is None} == BY_HAND
    contacts, escalation = people_of(config, "staging")
    assert [(e.level, e.description) for e in escalation] == RUNBOOK_ESCALATION
    assert {c.role for c in contacts} == {"Lead Developer", "DevOps", "DBA"}
    t = config.thresholds
    assert (t.response_time_ok_s, t.error_lines_window, t.memory_ok_mb, t.memory_warn_mb) == (2.0, 100, 500.0, 1000.0)
    assert config.notifications.webhook is None
    assert config.journal_path == Path("~/.local/state/rollback-console/journal.jsonl").expanduser()


def test_relative_paths_are_relative_to_the_config_file(tmp_path: Path) -> None:
    text = MINIMAL.replace(
        'password = { env = "ANALYTICBOT_STAGING_PASSWORD" }', 'password = { file = "secrets/staging.password" }'
    )
    config = load_config(write(tmp_path, text + '\n[console]\njournal = "state/journal.jsonl"\n'))
    assert config.environment("staging").password == SecretRef(file=str(tmp_path / "secrets" / "staging.password"))
    assert config.journal_path == tmp_path / "state" / "journal.jsonl"


def test_custom_checklist_and_matrix_replace_the_defaults(tmp_path: Path) -> None:
    text = MINIMAL + (
        '\n[[decision_matrix]]\nsymptom = "Latency > 3s"\nseverity = "HIGH"\naction = "quick"\n'
        'signal = "response_time_s"\nabove = 3\n'
        '\n[[checklist]]\nid = "health"\ntext = "Health is green"\ncheck = "health"\n'
    )
    config = load_config(write(tmp_path, text))
    assert matrix_rows(config) == [("Latency > 3s", "HIGH", "quick", "", "response_time_s", 3.0, None)]
    assert config.checklist == (ChecklistItem("health", "Health is green", "health"),)


# ---------------------------------------------------------------------------
# Bad input: the exact message, line and key
# ---------------------------------------------------------------------------


def test_malformed_toml_names_the_parsers_line(tmp_path: Path) -> None:
    text = MINIMAL.replace('kind = "staging"', "kind = staging")
    assert problems(tmp_path, text) == [(2, "", "not valid TOML: Invalid value (column 8)")]


def test_malformed_toml_at_end_of_file_still_has_a_line(tmp_path: Path) -> None:
    assert problems(tmp_path, MINIMAL + 'notes = "unfinished') == [
        (11, "", "not valid TOML: Unterminated string (at the end of the file)")
    ]


def test_key_or_table_written_twice_said_plainly(tmp_path: Path) -> None:
    text = MINIMAL + 'kind = "production"\n'
    assert problems(tmp_path, text) == [
        (11, "", "not valid TOML: this key is already set above (Cannot overwrite a value) (column 20)")
    ]
    text = MINIMAL + '\n[environments."staging"]\n'
    assert problems(tmp_path, text) == [
        (12, "", "not valid TOML: [environments.staging] is declared twice (column 24)")
    ]


def test_not_utf8_names_line_and_byte(tmp_path: Path) -> None:
    data = MINIMAL.encode() + b"# caf\xe9 au lait\n"
    assert problems(tmp_path, data) == [
        (11, "", "config is not valid UTF-8 (byte 0xe9 at column 6); save it as UTF-8"),
    ]


def test_missing_required_keys_are_all_reported(tmp_path: Path) -> None:
    text = "\n".join(line for line in MINIMAL.splitlines() if not line.startswith(("api_url", "password", "env_file")))
    assert problems(tmp_path, text) == [
        (
            1,
            "environments.staging.api_url",
            "required key is missing (add `api_url = …` under [environments.staging])",
        ),
        (
            1,
            "environments.staging.env_file",
            "required key is missing (add `env_file = …` under [environments.staging])",
        ),
    ]


def test_no_environments(tmp_path: Path) -> None:
    assert problems(tmp_path, "[console]\ndrill = true\n") == [
        (None, "environments", "no environment is configured (add [environments.staging])")
    ]
    assert problems(tmp_path, 'environments = ["staging"]\n') == [(1, "environments", "expected a table, got an array")]
    assert problems(tmp_path, "[environments]\n") == [
        (1, "environments", "no environment is configured (add [environments.staging])")
    ]


def test_problems_in_many_places_all_reported_in_line_order(tmp_path: Path) -> None:
    text = (
        MINIMAL.replace('kind = "staging"', 'kind = "prod"').replace("channel_id = -1001234567890", "channel_id = 1.5")
        + "\n[thresholds]\nprobe_timeout_s = 0\n"
        + '\n[[escalation]]\nlevel = 12\ndescription = ""\n'
    )
    assert problems(tmp_path, text) == [
        (2, "environments.staging.kind", "'prod' is not one of: staging, production (did you mean 'production'?)"),
        (4, "environments.staging.channel_id", "expected an integer, got a number 1.5"),
        (13, "thresholds.probe_timeout_s", "must be between 0.5 and 300 s, got 0"),
        (16, "escalation[0].level", "level must be 1-9"),
        (17, "escalation[0].description", "must not be empty"),
    ]


@pytest.mark.parametrize(
    ("old", "new", "line", "key", "message"),
    [
        (
            "channel_id = -1001234567890",
            'channel_id = "-1001234567890"',
            4,
            "environments.staging.channel_id",
            "expected an integer, got a string '-1001234567890'",
        ),
        (
            "channel_id = -1001234567890",
            "channel_id = true",
            4,
            "environments.staging.channel_id",
            "expected an integer, got true/false True",
        ),
        (
            'login_email = "ops-probe@analyticbot.example"',
            "login_email = 42",
            5,
            "environments.staging.login_email",
            "expected a string, got an integer 42",
        ),
        (
            'log_file = "/var/log/analyticbot/staging.log"',
            'log_file = "/var/log/analyticbot/staging.log"\ndays = "90"',
            11,
            "environments.staging.days",
            "expected an integer, got a string '90'",
        ),
    ],
    ids=["string-for-int", "bool-for-int", "int-for-string", "string-for-days"],
)
def test_wrong_types(tmp_path: Path, old: str, new: str, line: int, key: str, message: str) -> None:
    assert problems(tmp_path, MINIMAL.replace(old, new)) == [(line, key, message)]


def test_unknown_key_suggests_the_right_one(tmp_path: Path) -> None:
    text = MINIMAL.replace("restart_command", "restart_comand")
    assert problems(tmp_path, text) == [
        (
            1,
            "environments.staging.restart_command",
            "required key is missing (add `restart_command = …` under [environments.staging])",
        ),
        (8, "environments.staging.restart_comand", "unknown key (did you mean `restart_command`?)"),
    ]


def test_unknown_top_level_table_suggests_the_right_one(tmp_path: Path) -> None:
    text = MINIMAL + "\n[treshold]\nprobe_timeout_s = 3\n"
    assert problems(tmp_path, text) == [(12, "treshold", "unknown key (did you mean `thresholds`?)")]


def test_unknown_host_name(tmp_path: Path) -> None:
    hosts = 'hosts = ["prod-api-1", "prod-api2", "prod-api-3"]'
    text = MINIMAL.replace('kind = "staging"', f'kind = "staging"\n{hosts}') + TWO_HOSTS
    assert problems(tmp_path, text) == [
        (
            3,
            "environments.staging.hosts",
            "unknown host 'prod-api2' (did you mean 'prod-api-2'?): "
            'use "local" or a host defined in [hosts] (prod-api-1, prod-api-2)',
        ),
        (
            3,
            "environments.staging.hosts",
            # as close to prod-api-1 as to prod-api-2: no guess
            "unknown host 'prod-api-3': use \"local\" or a host defined in [hosts] (prod-api-1, prod-api-2)",
        ),
    ]


def test_host_listed_twice_and_a_host_named_local_refused(tmp_path: Path) -> None:
    text = MINIMAL.replace('kind = "staging"', 'kind = "staging"\nhosts = ["prod-api-1", "prod-api-1"]') + (
        '\n[hosts.prod-api-1]\naddress = "10.30.1.21"\n\n[hosts.local]\naddress = "10.30.1.99"\n'
    )
    assert problems(tmp_path, text) == [
        (
            3,
            "environments.staging.hosts",
            "host 'prod-api-1' is listed twice (each host is edited and restarted once)",
        ),
        (
            16,
            "hosts.local",
            '"local" is reserved for this machine; give the host another name '
            '(a host with address = "local" runs here too)',
        ),
    ]


def test_bad_host_port_and_missing_address(tmp_path: Path) -> None:
    text = MINIMAL.replace('kind = "staging"', 'kind = "staging"\nhosts = ["prod-api-1"]') + (
        '\n[hosts.prod-api-1]\nport = 70000\nuser = "deploy"\n'
    )
    assert problems(tmp_path, text) == [
        (13, "hosts.prod-api-1.address", "required key is missing (add `address = …` under [hosts.prod-api-1])"),
        (14, "hosts.prod-api-1.port", "70000 is not a TCP port"),
    ]


@pytest.mark.parametrize(
    ("kind", "message"),
    [
        ("prod", "'prod' is not one of: staging, production (did you mean 'production'?)"),
        ("Staging", "'Staging' is not one of: staging, production (did you mean 'staging'?)"),
        ("dev", "'dev' is not one of: staging, production"),
    ],
    ids=["prefix", "case", "no-guess"],
)
def test_kind_must_be_staging_or_production(tmp_path: Path, kind: str, message: str) -> None:
    text = MINIMAL.replace('kind = "staging"', f'kind = "{kind}"')
    assert problems(tmp_path, text) == [(2, "environments.staging.kind", message)]


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("localhost:10300", "'localhost:10300' is not an http(s) URL (write it like http://localhost:10300)"),
        ("ftp://files.example", "'ftp://files.example' is not an http(s) URL (write it like http://localhost:10300)"),
        ("http://", "'http://' is not an http(s) URL (write it like http://localhost:10300)"),
        ("http://[::1", "'http://[::1' is not a valid URL (Invalid IPv6 URL)"),
        ("http://localhost:99999", "'http://localhost:99999' is not a valid URL (Port out of range 0-65535)"),
    ],
    ids=["no-scheme", "ftp", "no-host", "broken-ipv6", "bad-port"],
)
def test_bad_api_url(tmp_path: Path, url: str, message: str) -> None:
    text = MINIMAL.replace("http://localhost:10300/", url)
    assert problems(tmp_path, text) == [(3, "environments.staging.api_url", message)]


def test_plaintext_password_refused_without_echoing_it(tmp_path: Path) -> None:
    text = MINIMAL.replace('password = { env = "ANALYTICBOT_STAGING_PASSWORD" }', 'password = "hunter2"')
    found = problems(tmp_path, text)
    assert found == [
        (
            6,
            "environments.staging.password",
            'secrets are never written in the config: use { env = "VAR" } or { file = "PATH" }',
        )
    ]
    assert "hunter2" not in repr(found)


def test_plaintext_dsn_and_webhook_refused_without_echoing_them(tmp_path: Path) -> None:
    text = MINIMAL + (
        '\n[environments.staging.database]\ndsn = "postgresql://ops:hunter2@db:5432/analytic_bot"\n'
        'rollback_script = "004_rollback.sql"\n'
        '\n[notifications]\nwebhook = "https://hooks.slack.com/services/T0/B0/hunter2"\n'
    )
    path = write(tmp_path, text)
    with pytest.raises(ConfigError) as info:
        load_config(path)
    assert [(p.line, p.key) for p in info.value.problems] == [
        (13, "environments.staging.database.dsn"),
        (17, "notifications.webhook"),
    ]
    assert "hunter2" not in str(info.value)


@pytest.mark.parametrize(
    ("ref", "message"),
    [
        (
            '{ env = "PW", file = "/etc/pw" }',
            'give env or file, not both: { env = "VAR" } or { file = "PATH" }',
        ),
        ('{ value = "hunter2" }', 'expected { env = "VAR" } or { file = "PATH" }, got `value`'),
        ("{}", 'expected { env = "VAR" } or { file = "PATH" }, got nothing'),
        ('{ env = "" }', "env must be a non-empty string"),
        ("12345", 'expected { env = "VAR" } or { file = "PATH" }'),
    ],
    ids=["both", "unknown-subkey", "empty", "empty-env", "number"],
)
def test_bad_secret_reference(tmp_path: Path, ref: str, message: str) -> None:
    text = MINIMAL.replace('{ env = "ANALYTICBOT_STAGING_PASSWORD" }', ref)
    found = problems(tmp_path, text)
    assert found == [(6, "environments.staging.password", message)]
    assert "hunter2" not in repr(found) and "12345" not in repr(found)


def test_placeholder_not_set_on_a_host(tmp_path: Path) -> None:
    text = MINIMAL.replace('kind = "staging"', 'kind = "staging"\nhosts = ["prod-api-1", "prod-api-2"]').replace(
        '"/opt/analyticbot/.env.staging"', '"{install_dir}/.env.staging"'
    ) + TWO_HOSTS.replace('address = "10.30.1.21"', 'address = "10.30.1.21"\nvars = { install_dir = "/srv/a" }')
    assert problems(tmp_path, text) == [
        (
            8,
            "environments.staging.env_file",
            "{install_dir} has no value on host(s) prod-api-2: set install_dir = … in [hosts.prod-api-2.vars]",
        )
    ]


def test_placeholder_on_local_says_local_has_no_vars(tmp_path: Path) -> None:
    text = MINIMAL.replace('"/var/log/analyticbot/staging.log"', '"/var/log/{service}.log"')
    assert problems(tmp_path, text) == [
        (
            10,
            "environments.staging.log_file",
            '{service} has no value on host(s) local: "local" has no vars: '
            'use a host with address = "local" and its own vars',
        )
    ]


def test_placeholders_set_everywhere_and_reserved_ones_pass(tmp_path: Path) -> None:
    edits = {
        'kind = "staging"': 'kind = "staging"\nhosts = ["prod-api-1", "prod-api-2"]',
        '"/opt/analyticbot/.env.staging"': '"{install_dir}/.env.{host}"',  # {host} is always known
        'log_file = "/var/log/analyticbot/staging.log"': 'log_command = "journalctl -n {lines}"',  # filled at run time
        "http://localhost:10300/": "http://127.0.0.1:{api_port}",
    }
    text = MINIMAL
    for old, new in edits.items():
        text = text.replace(old, new)
    text += """
[hosts.prod-api-1]
address = "10.30.1.21"
vars = { install_dir = "/srv/a", api_port = 10301 }

[hosts.prod-api-2]
address = "10.30.1.22"
vars = { install_dir = "/srv/b", api_port = 10302 }
"""
    env = load_config(write(tmp_path, text)).environment("staging")
    assert [env.expand(env.env_file, h) for h in env.hosts] == ["/srv/a/.env.prod-api-1", "/srv/b/.env.prod-api-2"]
    assert [env.expand(env.api_url, h) for h in env.hosts] == ["http://127.0.0.1:10301", "http://127.0.0.1:10302"]


def test_bad_matrix_row(tmp_path: Path) -> None:
    text = MINIMAL + (
        "\n[[decision_matrix]]\n"  # 12
        'symptom = "Response time > 5s"\n'  # 13
        'severity = "CRITICAL"\n'  # 14
        'action = "rollback"\n'  # 15
        'signal = "latency"\n'  # 16
        "\n[[decision_matrix]]\n"  # 18
        'symptom = "Memory"\n'  # 19
        'severity = "high"\n'  # 20
        'action = "partial-time"\n'  # 21
        'signal = "memory_mb"\n'  # 22
    )
    assert problems(tmp_path, text) == [
        (14, "decision_matrix[0].severity", "'CRITICAL' is not one of: HIGH, MEDIUM, LOW"),
        (
            15,
            "decision_matrix[0].action",
            "'rollback' is not one of: quick, partial-time-weighting, partial-content-type, code, database, full, "
            "investigate, check-flags",
        ),
        (
            16,
            "decision_matrix[0].signal",
            "'latency' is not one of: response_time_s, error_rate, memory_mb, missing_data, unhealthy",
        ),
        (18, "decision_matrix[1].above", "signal 'memory_mb' needs a threshold: above = …"),
        (20, "decision_matrix[1].severity", "'high' is not one of: HIGH, MEDIUM, LOW (did you mean 'HIGH'?)"),
        (
            21,
            "decision_matrix[1].action",
            "'partial-time' is not one of: quick, partial-time-weighting, partial-content-type, code, database, full, "
            "investigate, check-flags (did you mean 'partial-time-weighting'?)",
        ),
    ]


def test_decision_matrix_written_as_a_table_not_an_array(tmp_path: Path) -> None:
    text = MINIMAL + '\n[decision_matrix]\nsymptom = "x"\n'
    assert problems(tmp_path, text) == [
        (12, "decision_matrix", "expected an array of tables ([[decision_matrix]])"),
    ]


def test_escalation_names_an_unknown_role(tmp_path: Path) -> None:
    text = MINIMAL + (
        '\n[[contacts]]\nrole = "DevOps"\nname = "Ops rotation"\n'
        '\n[[escalation]]\nlevel = 1\ndescription = "Ops team attempts quick rollback"\ncontacts = ["Devops", "SRE"]\n'
    )
    assert problems(tmp_path, text) == [
        (
            19,
            "escalation[0].contacts",
            "'Devops' is not a role in [[contacts]] (did you mean 'DevOps'?); roles: DevOps",
        ),
        (19, "escalation[0].contacts", "'SRE' is not a role in [[contacts]]; roles: DevOps"),
    ]


def test_escalation_checked_against_default_contacts(tmp_path: Path) -> None:
    text = MINIMAL + '\n[[escalation]]\nlevel = 1\ndescription = "Page the SRE"\ncontacts = ["SRE"]\n'
    assert problems(tmp_path, text) == [
        (
            15,
            "escalation[0].contacts",
            "'SRE' is not a role in the profile's contacts; roles: DBA, DevOps, Lead Developer",
        )
    ]


def test_database_names_must_be_strings(tmp_path: Path) -> None:
    text = MINIMAL + (
        '\n[environments.staging.database]\ndsn = { env = "DSN" }\nrollback_script = "004_rollback.sql"\n'
        "columns = [1, 2]\n"
    )
    assert problems(tmp_path, text) == [
        (
            15,
            "environments.staging.database.columns",
            'item #1 is 1: expected names in quotes, like ["has_video", "has_media"]',
        )
    ]


def test_thresholds_moved_to_the_matrix_say_where_they_went(tmp_path: Path) -> None:
    # Not "did you mean `response_time_ok_s`": that rename would change what the value means.
    text = MINIMAL + "\n[thresholds]\nresponse_time_critical_s = 5.0\nmemory_rollback_mb = 2048\n"
    assert problems(tmp_path, text) == [
        (
            13,
            "thresholds.response_time_critical_s",
            'moved to the decision matrix: set `above` in its [[decision_matrix]] row (signal = "response_time_s")',
        ),
        (
            14,
            "thresholds.memory_rollback_mb",
            'moved to the decision matrix: set `above` in its [[decision_matrix]] row (signal = "memory_mb")',
        ),
    ]


def test_log_source_required_and_exclusive(tmp_path: Path) -> None:
    no_log = MINIMAL.replace('log_file = "/var/log/analyticbot/staging.log"\n', "")
    assert problems(tmp_path, no_log) == [(1, "environments.staging", "needs a log source: log_file or log_command")]
    both = MINIMAL + 'log_command = "journalctl -u analyticbot-api -n {lines}"\n'
    assert problems(tmp_path, both) == [
        (11, "environments.staging.log_command", "give log_file or log_command, not both"),
    ]


def test_missing_config_file(tmp_path: Path) -> None:
    path = tmp_path / "nope.toml"
    with pytest.raises(ConfigError) as info:
        load_config(path)
    assert str(info.value) == f"{path}: cannot read config: No such file or directory"


def test_config_path_is_a_directory(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as info:
        load_config(tmp_path)
    assert str(info.value) == f"{tmp_path}: cannot read config: is a directory, not a regular file"


# ---------------------------------------------------------------------------
# `rollback-console config validate FILE`, as a real process
# ---------------------------------------------------------------------------


def validate(path: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "console", "config", "validate", str(path)],
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=60,
    )


def test_the_probe_parameters_come_from_the_profile_unless_the_config_sets_them(tmp_path: Path) -> None:
    """channel_id, login_email, password and days are the Phase 4 probe's parameters: the
    profile has values for staging and production, the config's own override them, and an
    environment the profile does not know needs them in the config (config validate says which)."""
    from console.probes.parameters import values_for
    from console.profile import profile_of

    bare = "\n".join(
        line for line in MINIMAL.splitlines() if not line.startswith(("channel_id", "login_email", "password"))
    )
    staging = load_config(write(tmp_path, bare)).environment("staging")
    assert (staging.channel_id, staging.login_email, staging.password, staging.days) == (None, None, None, None)
    assert values_for(staging, profile_of(staging).probe) == {
        "channel_id": -1001234567890,
        "days": 90,
        "login_email": "ops-probe@analyticbot.example",
        "password": SecretRef(env="ANALYTICBOT_STAGING_PASSWORD"),
    }
    configured = load_config(write(tmp_path, MINIMAL.replace("channel_id = -1001234567890", "channel_id = -42")))
    env = configured.environment("staging")
    assert values_for(env, profile_of(env).probe)["channel_id"] == -42

    canary = write(tmp_path, bare.replace("[environments.staging]", "[environments.canary]"), "canary.toml")
    result = validate(canary)
    assert result.returncode == 2, result
    said = result.stderr.splitlines()
    for name in ("channel_id", "login_email", "password"):
        assert f"{canary}:1: environments.canary: the probe's parameter {name} has no value: set {name} here, " in (
            "\n".join(said)
        )
    assert said[-1] == f"{canary}: 3 problem(s)"
    configured_canary = MINIMAL.replace("[environments.staging]", "[environments.canary]")
    assert validate(write(tmp_path, configured_canary, "configured.toml")).returncode == 0


def test_cli_validate_good_file() -> None:
    result = validate(SAMPLE)
    assert result.returncode == 0, result.stderr
    assert result.stdout == (
        f"{SAMPLE}: ok — staging (staging, 1 host), production (production, 2 hosts)"
        "; profile analyticbot-phase4.toml (the default)\n"
    )
    assert result.stderr == ""


def test_cli_validate_bad_file_lists_every_problem(tmp_path: Path) -> None:
    text = MINIMAL.replace('kind = "staging"', 'kind = "prod"').replace(
        'password = { env = "ANALYTICBOT_STAGING_PASSWORD" }', 'password = "hunter2"'
    ) + ('\n[[escalation]]\nlevel = 1\ndescription = "Page"\ncontacts = ["SRE"]\n')
    path = write(tmp_path, text)
    result = validate(path)
    assert result.returncode == 2
    assert result.stdout == ""
    assert result.stderr.splitlines() == [
        f"{path}:2: environments.staging.kind: 'prod' is not one of: staging, production (did you mean 'production'?)",
        f"{path}:6: environments.staging.password: "
        'secrets are never written in the config: use { env = "VAR" } or { file = "PATH" }',
        f"{path}:15: escalation[0].contacts: "
        "'SRE' is not a role in the profile's contacts; roles: DBA, DevOps, Lead Developer",
        f"{path}: 3 problem(s)",
    ]
    assert "hunter2" not in result.stderr


@pytest.mark.parametrize(
    ("content", "first_line"),
    [
        (MINIMAL.encode() + b"x = [", "{path}:11: not valid TOML: Invalid value (at the end of the file)"),
        (b"\xff\xfe[environments]\n", "{path}:1: config is not valid UTF-8 (byte 0xff at column 1); save it as UTF-8"),
        (
            MINIMAL.replace("http://localhost:10300/", "http://[::1").encode(),
            "{path}:3: environments.staging.api_url: 'http://[::1' is not a valid URL (Invalid IPv6 URL)",
        ),
        (b"x = " + b"[" * 5000 + b"]" * 5000 + b"\n", "{path}: not valid TOML: nested too deeply"),
        (None, "{path}: cannot read config: No such file or directory"),
    ],
    ids=["toml", "utf8", "ipv6-url", "deep", "missing"],
)
def test_cli_validate_never_shows_a_traceback(tmp_path: Path, content: bytes | None, first_line: str) -> None:
    path = write(tmp_path, content) if content is not None else tmp_path / "missing.toml"
    result = validate(path)
    assert result.returncode == 2
    assert result.stdout == ""
    assert "Traceback" not in result.stderr
    assert result.stderr.splitlines() == [first_line.format(path=path), f"{path}: 1 problem(s)"]


# ---------------------------------------------------------------------------
# Where the config is found
# ---------------------------------------------------------------------------


def test_find_config_order(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ROLLBACK_CONSOLE_CONFIG", str(tmp_path / "from-env.toml"))
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "xdg"))
    assert find_config(str(tmp_path / "explicit.toml")) == tmp_path / "explicit.toml"
    assert find_config(None) == tmp_path / "from-env.toml"
    monkeypatch.delenv("ROLLBACK_CONSOLE_CONFIG")
    assert find_config(None) == tmp_path / "xdg" / "rollback-console" / "config.toml"
    monkeypatch.setenv("ROLLBACK_CONSOLE_CONFIG", "")  # empty counts as unset
    monkeypatch.delenv("XDG_CONFIG_HOME")
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    assert find_config(None) == tmp_path / "home" / ".config" / "rollback-console" / "config.toml"


# ---------------------------------------------------------------------------
# Secrets
# ---------------------------------------------------------------------------


def test_secret_from_env(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("RC_TEST_PW", "s3cret value")
    ref = SecretRef(env="RC_TEST_PW")
    assert ref.resolve() == "s3cret value"
    assert ref.describe() == "$RC_TEST_PW"


def test_secret_env_missing(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("RC_TEST_PW", raising=False)
    with pytest.raises(SecretError) as info:
        SecretRef(env="RC_TEST_PW").resolve()
    assert str(info.value) == "environment variable RC_TEST_PW is not set"


def test_secret_from_file_strips_the_newline(tmp_path: Path) -> None:
    path = tmp_path / "pw"
    path.write_text("s3cret\n", encoding="utf-8")
    ref = SecretRef(file=str(path))
    assert ref.resolve() == "s3cret"
    assert ref.describe() == f"file {path}"


def test_secret_file_missing_unreadable_or_binary(tmp_path: Path) -> None:
    path = tmp_path / "pw"
    with pytest.raises(SecretError) as info:
        SecretRef(file=str(path)).resolve()
    assert str(info.value) == f"cannot read secret file {path}: No such file or directory"

    path.write_bytes(b"hunter2\xff\xfe")
    with pytest.raises(SecretError) as info:
        SecretRef(file=str(path)).resolve()
    assert str(info.value) == f"secret file {path} is not UTF-8 text"
    assert "hunter2" not in str(info.value) and "0xff" not in str(info.value)

    with pytest.raises(SecretError) as info:
        SecretRef(file=str(tmp_path)).resolve()
    assert str(info.value) == f"cannot read secret file {tmp_path}: is a directory, not a regular file"


# ---------------------------------------------------------------------------
# Line numbers: locate.key_lines
# ---------------------------------------------------------------------------

LOCATE_TEXT = """\
# comment with a line separator \u2028 and [brackets] = "no key"
title = "x"
[environments.staging]
kind = "staging"
password = { env = "PW" }
fleet.mode = "rolling"
"quoted.key" = 1
notes = \"\"\"
[not.a.table]
fake = 1
\"\"\"
literal = '''
also = "not a key"
'''

[environments . "staging" . database]
dsn = { file = "/etc/dsn" }

[[decision_matrix]]
symptom = "a"

[[decision_matrix]]  # second row
symptom = "b"
action = "quick"

[decision_matrix.extra]
x = 1
"""


def test_key_lines() -> None:
    lines = key_lines(LOCATE_TEXT)
    assert tomllib.loads(LOCATE_TEXT)  # the text is valid TOML
    expected = {
        ("title",): 2,
        ("environments",): 3,  # implicit, created by the header
        ("environments", "staging"): 3,
        ("environments", "staging", "kind"): 4,
        ("environments", "staging", "password"): 5,  # an inline table: its own line
        ("environments", "staging", "fleet"): 6,  # implicit, created by a dotted key
        ("environments", "staging", "fleet", "mode"): 6,
        ("environments", "staging", "quoted.key"): 7,
        ("environments", "staging", "notes"): 8,
        ("environments", "staging", "literal"): 12,
        ("environments", "staging", "database"): 16,
        ("environments", "staging", "database", "dsn"): 17,
        ("decision_matrix",): 19,
        ("decision_matrix", 0): 19,
        ("decision_matrix", 0, "symptom"): 20,
        ("decision_matrix", 1): 22,
        ("decision_matrix", 1, "symptom"): 23,
        ("decision_matrix", 1, "action"): 24,
        ("decision_matrix", 1, "extra"): 26,  # a sub-table of the last row
        ("decision_matrix", 1, "extra", "x"): 27,
    }
    assert lines == expected  # nothing from inside the multi-line strings or the comment


def test_locate_falls_back_to_the_nearest_parent() -> None:
    lines = key_lines(LOCATE_TEXT)
    assert locate(lines, ("environments", "staging", "password", "env")) == 5  # inside the inline table
    assert locate(lines, ("environments", "staging", "restart_command")) == 3  # missing: its table
    assert locate(lines, ("decision_matrix", 1, "severity")) == 22
    assert locate(lines, ("nowhere",)) is None


def test_every_key_of_the_sample_config_is_located_on_its_own_line() -> None:
    text = SAMPLE.read_text(encoding="utf-8")
    lines = key_lines(text)
    source = text.split("\n")

    def walk(value: Any, path: tuple[str | int, ...]) -> None:
        """Check each key written as `key = …` in the file; descend into tables and arrays of tables."""
        if isinstance(value, list) and value and all(isinstance(v, dict) for v in value):
            for i, item in enumerate(value):
                walk(item, (*path, i))
            return
        inline = path[-1] in ("password", "dsn", "webhook")  # inline tables: { env = … }
        if isinstance(value, dict) and not inline:
            for key, item in value.items():
                walk(item, (*path, key))
            return
        line = lines[path]
        assert source[line - 1].lstrip().startswith(f"{path[-1]} ="), (path, line, source[line - 1])
        checked.append(path)

    checked: list[tuple[str | int, ...]] = []
    for key, value in tomllib.loads(text).items():
        walk(value, (key,))
    assert len(checked) > 100
    assert lines[("decision_matrix", 5, "action")] == source.index('action = "code"') + 1
    assert lines[("escalation", 3, "contacts")] == source.index('contacts = ["Lead Developer", "DevOps", "DBA"]') + 1


def test_quoted_placeholder_survives_the_shell_whatever_the_value(tmp_path: Path) -> None:
    from console.config.model import expand

    value = """/srv/it's "here" $(touch pwned) `touch pwned` ; & | \\ end"""
    host = Host(name="web-1", address="10.0.0.1", vars=(("home", value),))
    command = expand("printf '%s|%s' {home:q} {host:q}", host)
    out = subprocess.run(["sh", "-c", command], capture_output=True, text=True, cwd=tmp_path, check=True)
    assert out.stdout == f"{value}|web-1"
    assert not (tmp_path / "pwned").exists()
    assert expand("{home}/x", host) == f"{value}/x", "{name} still pastes the value as it is"


def test_quoted_placeholder_is_for_commands_not_paths(tmp_path: Path) -> None:
    text = MINIMAL.replace('kind = "staging"', 'kind = "staging"\nhosts = ["prod-api-1"]').replace(
        '"/opt/analyticbot/.env.staging"', '"{install_dir:q}/.env.staging"'
    ).replace('"sudo systemctl restart analyticbot-api"', '"cd {install_dir:q} && ./restart"') + TWO_HOSTS.replace(
        'address = "10.30.1.21"', 'address = "10.30.1.21"\nvars = { install_dir = "/srv/a" }'
    )
    assert problems(tmp_path, text) == [
        (
            8,
            "environments.staging.env_file",
            "{install_dir:q} shell-quotes a value, for commands; a path or URL takes {install_dir}",
        )
    ]
