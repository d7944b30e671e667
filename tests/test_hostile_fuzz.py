"""Arbitrary bytes into every parser of what comes from outside: the env file, the service's
log, a journal line (and the readers of any records) and an HTTP answer's body.

Each parser is total: it returns, or raises only its own documented error (EnvFileError
from an edit, ProbeFailed never escapes a probe, a journal line is a record or None).
Nothing it returns holds a raw control character once shown.
"""

from __future__ import annotations

import asyncio
import json
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
from hypothesis import HealthCheck, assume, example, given, settings
from hypothesis import strategies as st

from console import safe_text
from console.envfile import EnvFileError, parse_env, unified_diff
from console.journal import history_json, history_markdown, history_text, incident_report
from console.journal.chain import verify_lines
from console.journal.records import ZERO_HASH, parse_line, record_hash
from console.journal.report import SECTION_FAILED
from console.journal.runs import summarize
from console.probes import logs
from console.probes.http import probe_health, run_probe
from console.profile import profile_at
from console.transport.base import split_tail
from tests.hostile.support import RAW_UNSAFE
from tests.phase4 import ADVANCED, FLAG_NAMES, LOG, RULES

FUZZ = settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
DEEP = b"[" * 100_000 + b"]" * 100_000

# Pieces that make random bytes look like the real thing often enough to reach deep paths.
ENV_PIECES = [
    b"\n",
    b"\r\n",
    b"=",
    b"export ",
    b"#",
    b" ",
    b'"',
    b"'",
    b"\\",
    b"true",
    b"False",
    b"\x00",
    b"\x1b[2J",
    b"\xff",
    "\u202e".encode(),
    *(name.encode() for name in FLAG_NAMES),
    b"DATABASE_URL",
]
env_bytes = st.one_of(
    st.binary(max_size=512),
    st.lists(st.one_of(st.sampled_from(ENV_PIECES), st.binary(max_size=8)), max_size=60).map(b"".join),
)


@FUZZ
@given(env_bytes, st.dictionaries(st.sampled_from(FLAG_NAMES), st.booleans(), min_size=1))
@example(b"\x00" * 4096, {ADVANCED: False})
def test_the_env_file_parser_is_total(data: bytes, changes: dict[str, bool]) -> None:
    env = parse_env(data, "/srv/.env")
    env.flags(RULES), env.values, env.problems, env.flag_lines(RULES), env.not_text
    for problem in env.problems:
        str(problem)
    try:
        new = env.with_flags(changes, RULES)
    except EnvFileError:
        return
    assert env.encoded(env.text) == data  # every byte round-trips
    for shown in (FLAG_NAMES, None):
        diff = unified_diff("/srv/.env", env.text, new, shown=shown)
        assert not RAW_UNSAFE.search(diff), repr(diff)


# A statement whose value holds the canary, in the shapes python-dotenv reads: plain,
# quoted, multi-line quoted, unterminated, with a comment, after `export`.
CANARY = "CANARY-7d1e"
secret_statement = st.sampled_from(
    [
        f"DATABASE_URL=postgresql://u:{CANARY}@db/x",
        f'export API_TOKEN="{CANARY}"',
        f"KEY='line1\n{CANARY}\nline3'",
        f'PEM="-----BEGIN-----\n{CANARY}\nNOT_A_KEY={CANARY}\n-----END-----"',
        f'BROKEN="unterminated {CANARY}',
        f"A=plain # {CANARY} in a comment after a value",
        f"NO_EQUALS_SIGN {CANARY}",
        f"WEIRD KEY={CANARY}",
    ]
)
flag_statement = st.builds(lambda n, v: f"{n}={v}", st.sampled_from(FLAG_NAMES), st.sampled_from(["true", "false"]))
other_statement = st.sampled_from(["", "# a comment", "PORT=10300", "   "])


@FUZZ
@given(
    st.lists(st.one_of(secret_statement, flag_statement, other_statement), min_size=1, max_size=12),
    st.sampled_from(["\n", "\r\n"]),
    st.dictionaries(st.sampled_from(FLAG_NAMES), st.booleans(), min_size=1),
)
def test_a_diff_never_shows_a_value_beside_the_flags(statements: list[str], newline: str, changes: dict) -> None:
    text = newline.join(statements) + newline
    env = parse_env(text)
    diff = unified_diff("f", env.text, env.with_flags(changes, RULES), shown=FLAG_NAMES)
    assert CANARY not in diff, diff


log_line_bytes = st.one_of(
    st.binary(max_size=300),
    st.recursive(
        st.none() | st.booleans() | st.floats() | st.text(max_size=20),
        lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4),
        max_leaves=20,
    ).map(lambda v: json.dumps({"level": v, "message": "x"}).encode()),
    st.sampled_from([b'{"level": ' + DEEP + b"}", b"{" * 5000, b'{"level": NaN}', b"[ERROR] \x1b[2J\x00\x9b"]),
)


@FUZZ
@given(st.lists(log_line_bytes, max_size=30), st.booleans())
@example([DEEP], False)
def test_the_log_reader_is_total(lines: list[bytes], cut_first: bool) -> None:
    data = b"\n".join(lines)
    read = split_tail(data, 100, cut_first=cut_first)
    report = logs.summarize([LOG.line(line) for line in read])
    LOG.latest_flags(read, RULES)
    for line in read:
        LOG.is_error(line)
        LOG.is_flag_line(line)
        assert not RAW_UNSAFE.search(safe_text.terminal(line))
    assert report.window == len(read)


# --- the journal ------------------------------------------------------------------------------

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False, allow_infinity=False) | st.text(max_size=30),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=10), inner, max_size=5),
    max_leaves=30,
)


@FUZZ
@given(st.one_of(st.binary(max_size=1024), json_values.map(lambda v: json.dumps(v).encode())))
@example(DEEP)
@example(b'{"seq":1,"hash":"x","prev":"y","type":"note","data":{"x":NaN}}')
@example(b'{"seq":' + b"9" * 5000 + b"}")
def test_a_journal_line_is_a_record_or_nothing(raw: bytes) -> None:
    record = parse_line(raw)
    assert record is None or isinstance(record, dict)
    for problem in verify_lines(raw + b"\n") + verify_lines(raw):
        str(problem)


KEYS = ["action", "reason", "plan", "recommendation", "authorization", "outcome", "duration_s", "message", "step",
        "host", "phase", "facts", "checks", "item", "ticked", "evidence", "by", "decision", "title", "output",
        "elapsed_s", "drill", "event", "status", "error", "lock", "holder", "approver", "requester", "resumed",
        "remedy", "troubleshooting", "evidence", "target_s", "steps", "findings", "path", "expires_at", "preview",
        "restores", "options"]  # fmt: skip
TYPES = ["run_requested", "run_started", "step_started", "step_finished", "step_failed", "decision", "validation",
         "run_finished", "note", "checklist", "notified", "notify_failed", "lock_broken", "report_written",
         "drill_scored", "run_approved", "run_rejected", "run_withdrawn", "run_expired"]  # fmt: skip
data_st = st.dictionaries(st.sampled_from(KEYS), json_values, max_size=8)
who_st = st.fixed_dictionaries(
    {},
    optional={
        "user": st.text(max_size=8),
        "host": st.text(max_size=8),
        "pid": st.integers(0, 2**31 - 1),
        "ssh_client": st.text(max_size=8),
    },
)


@st.composite
def journals(draw: st.DrawFn) -> list[dict[str, Any]]:
    """Records with a valid envelope (what parse_line lets through) and any data."""
    start = datetime(2025, 1, 1, tzinfo=UTC)
    out, prev = [], ZERO_HASH
    for seq in range(1, draw(st.integers(1, 12)) + 1):
        ts = start + timedelta(seconds=draw(st.integers(-100, 10_000)))
        record = {
            "seq": seq,
            "ts": draw(st.one_of(st.just(ts.isoformat().replace("+00:00", "Z")), st.text(max_size=12))),
            "type": draw(st.sampled_from(TYPES)),
            "run": draw(st.sampled_from(["r-1", "r-2", None])),
            "env": draw(st.sampled_from(["staging", "production", None])),
            "who": draw(who_st),
            "data": draw(data_st),
            "prev": prev,
        }
        record["hash"] = prev = record_hash(record)
        line = json.dumps(record).encode()
        assume(parse_line(line) is not None)  # e.g. nested deeper than a record may be
        out.append(json.loads(line))
    return out


@FUZZ
@given(journals())
def test_every_reader_of_any_records_answers(records: list[dict[str, Any]]) -> None:
    runs = summarize(records)
    for text in (history_text(runs), history_markdown(runs)):
        assert not RAW_UNSAFE.search(text)
    json.dumps(safe_text.finite(history_json(runs)), allow_nan=False)
    for run in runs:
        report = incident_report(run)
        assert not RAW_UNSAFE.search(report)
        assert SECTION_FAILED not in report, report
        run.outcome_text(), run.progress(), run.facts(), run.to_dict(), run.in_progress_at()
        if run.request is not None:
            r = run.request
            r.describe(), r.title, r.preview_text, r.preview_digest, r.request_reason, r.seconds_left(0.0)


# --- an HTTP answer ---------------------------------------------------------------------------

bodies = st.one_of(
    st.binary(max_size=512),
    json_values.map(lambda v: json.dumps(v).encode()),
    st.builds(
        lambda data, status: json.dumps({"status": status, "version": 1.0, "data": data}).encode(),
        json_values,
        st.sampled_from(["healthy", "failed", None]),
    ),
    st.sampled_from([DEEP, b'{"version": NaN}', b'{"data": {"total_posts_analyzed": 1e999}}', b"\x00\xff"]),
)


@FUZZ
@given(st.sampled_from([200, 200, 401, 500]), bodies)
@example(200, DEEP)
def test_the_http_probes_are_total(status: int, body: bytes) -> None:
    def answer(request: httpx.Request) -> httpx.Response:
        if request.url.path == "/auth/login":
            return httpx.Response(200, json={"access_token": "tok"})
        return httpx.Response(status, content=body)

    async def probe() -> None:
        async with httpx.AsyncClient(transport=httpx.MockTransport(answer), timeout=5) as client:
            phase4 = profile_at(None)  # the default profile: /health, /health/ready, login, best-times
            health = await probe_health(client, "http://api.test", phase4.health)
            values = {"login_email": "e@x", "password": "p", "channel_id": 1, "days": 90}
            reco = await run_probe(client, "http://api.test", phase4.probe, values)
        for report in (*health.endpoints, reco):
            for value in vars(report).values():
                if isinstance(value, str):
                    assert not RAW_UNSAFE.search(safe_text.terminal(value))

    asyncio.run(probe())


def test_watch_follows_runs_past_a_hostile_line(tmp_path) -> None:
    """`watch` once stopped following runs, silently, at a deeply nested journal line."""
    from console.journal import Journal

    journal = Journal(tmp_path / "journal.jsonl")
    journal.append("note", run="r-1", data={"message": "before"})

    async def follow() -> list[str]:
        seen = []
        async with asyncio.timeout(30):
            async for record in journal.follow(poll_s=0.02):
                seen.append(record["data"]["message"])
                if record["data"]["message"] == "before":
                    with open(journal.path, "ab") as fh:
                        fh.write(DEEP + b"\n" + b'{"seq": NaN}\n')
                    journal.append("note", run="r-1", data={"message": "after"})
                if record["data"]["message"] == "after":
                    return seen
        return seen

    assert asyncio.run(follow()) == ["before", "after"]
