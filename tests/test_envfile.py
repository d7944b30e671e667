"""Env-file edits change only the flag lines and keep every other byte.

python-dotenv (the parser the service's env file is read with) is the reference: what
it reads from the edited bytes is what the service will run with after a restart.
"""

from __future__ import annotations

import io
import json
import re

import pytest
from dotenv import dotenv_values
from dotenv.parser import parse_stream
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from console.envfile import EnvFileError, Splice, apply_splices, parse_env, unified_diff
from tests.phase4 import (
    ADVANCED,
    ALL_OFF,
    ALL_ON,
    CONTENT_TYPE,
    FLAG_NAMES,
    RULES,
    TIME_WEIGHTING,
    FlagSet,
    flag_value,
    flags,
)

TW, CT, ADV = TIME_WEIGHTING, CONTENT_TYPE, ADVANCED


# ---------------------------------------------------------------------------
# Reference helpers: python-dotenv itself, independent of console.envfile.
# ---------------------------------------------------------------------------


def dotenv_read(data: bytes) -> dict[str, str | None]:
    """What python-dotenv reads from these bytes, opened the way it opens a file."""
    stream = io.TextIOWrapper(io.BytesIO(data), encoding="utf-8", errors="surrogateescape")
    return dict(dotenv_values(stream=stream, interpolate=False))


def effective(values: dict[str, str | None]) -> dict[str, bool]:
    """The service's view: os.getenv(NAME, "true").lower() == "true"; a key without "=" stays unset."""
    return {name: flag_value(values.get(name)) for name in FLAG_NAMES}


def others(values: dict[str, str | None]) -> dict[str, str | None]:
    return {k: v for k, v in values.items() if k not in FLAG_NAMES}


MARK = "\x00{}\x00"


def without_flag_statements(text: str) -> str:
    """The text with each flag statement replaced by a marker.

    Blank lines before a statement and the line break after it are kept, so every
    byte that is not part of a flag binding is still there, in order.
    """
    out = ["\ufeff"] if text.startswith("\ufeff") else []
    for b in parse_stream(io.StringIO(text)):
        s = b.original.string
        if b.key in FLAG_NAMES and not b.error:
            blank = re.match(r"\s*", s).end()
            eol = re.search(r"(\r\n|\n|\r)?\Z", s).group(0)
            out.append(s[:blank] + MARK.format(b.key) + eol)
        else:
            out.append(s)
    return "".join(out)


def check_edit(data: bytes, changes: dict[str, bool]) -> str:
    """Apply the edit and check every property; return the new text."""
    old = parse_env(data, "/srv/.env")
    new_text = old.with_flags(changes, RULES)
    new_bytes = old.encoded(new_text)
    new = parse_env(new_bytes, "/srv/.env")

    # (5) the bytes round-trip, whatever they are
    assert old.encoded() == data
    assert new.encoded() == new_bytes
    assert new.text == new_text

    # (1) the requested flags, as console.envfile and as python-dotenv read them
    want = {**effective(dotenv_read(data)), **changes}
    assert new.flags(RULES).as_env() == {name: "true" if on else "false" for name, on in want.items()}
    assert effective(dotenv_read(new_bytes)) == want
    assert effective(new.values) == want

    # (2) every byte outside the flag statements unchanged and in order; missing flags
    # appended at the end, each on its own line
    before, after = without_flag_statements(old.text), without_flag_statements(new_text)
    assert after.startswith(before), "bytes outside the flag lines changed"
    tail = after[len(before) :]
    if tail and before.removeprefix("\ufeff") and not before.endswith(("\n", "\r")):
        assert tail[0] in "\r\n", "appended flag runs into the last line"
    appended = re.findall(r"\x00(\w+)\x00", tail)
    assert re.fullmatch(r"(\r?\n)?(\x00\w+\x00\r?\n)*", tail), repr(tail)
    old_keys = {b.key for b in old.bindings if b.key in FLAG_NAMES and not b.error}
    assert appended == [k for k in FLAG_NAMES if k in changes and k not in old_keys]

    # the comments on flag lines stay (the generator marks each one)
    assert new_text.count(KEEP) == old.text.count(KEEP), "a comment on a flag line was lost"
    # appended lines follow the file's line endings
    if appended and "\n" in old.text:
        crlf = old.text.count("\r\n")
        if crlf == old.text.count("\n"):
            assert tail.count("\r\n") == tail.count("\n"), "CRLF file got LF lines"
        elif crlf == 0:
            assert "\r\n" not in tail, "LF file got CRLF lines"

    # (3) other keys read exactly as before
    assert others(new.values) == others(old.values)
    assert others(dotenv_read(new_bytes)) == others(dotenv_read(data))
    assert [str(p) for p in new.problems] == [str(p) for p in old.problems]

    # (4) idempotent
    assert new.with_flags(changes, RULES) == new_text
    return new_text


# ---------------------------------------------------------------------------
# The generator of odd env files
# ---------------------------------------------------------------------------

blanks = st.sampled_from(["", " ", "\t", "  \t ", "\xa0", "\x0c"])
free_text = st.text(
    # "\udcff" and "\udce9" are the bytes 0xff and 0xe9, which are not UTF-8
    alphabet=st.sampled_from([*"abc XYZ019_-=#$:/@.,!'\"\\", "é", "→", "\u2028", "\udcff", "\udce9"]),
    max_size=12,
)
other_keys = st.sampled_from(
    [
        "DATABASE_URL",
        "API_PORT",
        "FOO",
        "ENABLE_TIME_WEIGHTING_V2",
        "enable_time_weighting",
        "X_ENABLE_CONTENT_TYPE_ANALYSIS",
    ]
)
flag_keys = st.sampled_from(FLAG_NAMES)
flag_raw = st.sampled_from(
    ["true", "false", "TRUE", "True", "FALSE", "1", "0", "yes", "", "", "on", "tr'ue", 'fal"se', "x\\y", "a #b", "t r"]
)
KEEP = "@keep"  # in every comment on a flag line, never in a value: a comment lost is a count that drops


@st.composite
def assignment(draw: st.DrawFn, key: str, raw: str) -> str:
    export = draw(st.sampled_from(["", "export ", "export\t"]))
    if draw(st.integers(0, 9)) == 0:
        key = f"'{key}'"
    eq = draw(st.sampled_from(["=", " = ", "= ", " ="]))
    form = draw(st.sampled_from(["plain", "plain-comment", "single", "double", "double-comment", "single-comment"]))
    escaped_double = raw.replace("\\", "\\\\").replace('"', '\\"')
    escaped_single = raw.replace("\\", "\\\\").replace("'", "\\'")
    comment = " # " + draw(free_text) + KEEP
    body = {
        "plain": raw,
        "plain-comment": raw + comment,
        "single": f"'{escaped_single}'",
        "single-comment": f"'{escaped_single}'{comment}",
        "double": f'"{escaped_double}"',
        "double-comment": f'"{escaped_double}"{comment}',
    }[form]
    return draw(blanks) + export + key + eq + body


@st.composite
def flag_statement(draw: st.DrawFn) -> str:
    key, raw = draw(flag_keys), draw(flag_raw)
    kinds = ["assign"] * 4 + ["bare", "bare-comment", "empty", "empty-comment", "hash", "escaped"]
    kind = draw(st.sampled_from(kinds))
    if kind == "assign":
        return draw(assignment(key, raw))
    return {
        "bare": key,  # a key with no "=": unset, so true
        "bare-comment": f"{key}  # no value {KEEP}",
        "empty": key + draw(st.sampled_from(["=", "= ", " =\t"])),
        "empty-comment": f"{key}= # empty {KEEP}",
        "hash": f"{key}#no value {KEEP}",
        "escaped": draw(st.sampled_from([f"{key}='it\\'s' #{KEEP}", f'{key}="say \\"hi\\"" #{KEEP}'])),
    }[kind]


@st.composite
def other_statement(draw: st.DrawFn) -> str:
    kind = draw(
        st.sampled_from(["blank", "comment", "decoy-comment", "other", "other", "bare", "multiline", "malformed"])
    )
    if kind == "blank":
        return draw(blanks)
    if kind == "comment":
        return draw(blanks) + "#" + draw(free_text)
    if kind == "decoy-comment":
        return f"# {draw(flag_keys)}=true"
    if kind == "other":
        plain_safe = draw(free_text).replace("'", "").replace('"', "").lstrip("#")
        return draw(assignment(draw(other_keys), plain_safe))
    if kind == "bare":
        return draw(other_keys)
    if kind == "multiline":
        # A value over several lines, one of which looks exactly like a flag line.
        nl = draw(st.sampled_from(["\n", "\r\n"]))
        return f'{draw(other_keys)}="first{nl}{draw(flag_keys)}=true{nl}last"'
    return draw(
        st.sampled_from(
            [
                "this is not an assignment",
                "FOO BAR=1",
                "=novalue",
                'BROKEN="unterminated',
                f"{TW} true",
                "KEY='x' trailing",
            ]
        )
    )


@st.composite
def env_files(draw: st.DrawFn) -> bytes:
    statements = draw(st.lists(st.one_of(flag_statement(), other_statement()), max_size=14))
    ending = st.sampled_from(["\n", "\n", "\r\n", "\r\n", "\r"])
    out = "\ufeff" if draw(st.integers(0, 14)) == 0 else ""
    for i, statement in enumerate(statements):
        last = i == len(statements) - 1
        out += statement + ("" if last and draw(st.booleans()) else draw(ending))
    data = out.encode("utf-8", "surrogateescape")
    if draw(st.integers(0, 5)) == 0:  # bytes that are not UTF-8 at the start of some line
        starts = [0] + [i + 1 for i, c in enumerate(data) if c == ord("\n")]
        at = draw(st.sampled_from(starts))
        data = data[:at] + draw(st.sampled_from([b"\xff", b"\xe9", b"\xc3", b"\x80\x80"])) + data[at:]
    return data


changes_st = st.dictionaries(flag_keys, st.booleans(), min_size=1)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(env_files(), changes_st)
def test_edit_changes_only_flag_lines_of_any_env_file(data: bytes, changes: dict[str, bool]) -> None:
    check_edit(data, changes)


# ---------------------------------------------------------------------------
# Each odd case, by example
# ---------------------------------------------------------------------------

OFF = {ADV: False, TW: False, CT: False}


def edit(text: str | bytes, changes: dict[str, bool]) -> str:
    data = text.encode("utf-8", "surrogateescape") if isinstance(text, str) else text
    return check_edit(data, changes)


def test_comments_blank_lines_and_other_keys_kept() -> None:
    text = (
        "# analyticbot production\n\nDATABASE_URL=postgres://db/x\n\n# Phase 4\nENABLE_ADVANCED_RECOMMENDATIONS=true\n"
    )
    assert edit(text, {ADV: False}) == text.replace(f"{ADV}=true", f"{ADV}=false")


def test_export_prefix_kept() -> None:
    assert edit(f"export {TW}=true\n", {TW: False}) == f"export {TW}=false\n"


def test_quoted_values_keep_their_quotes_and_comments() -> None:
    text = f"{TW}='true' # single\n{CT}=\"TRUE\"  # double\n"
    assert edit(text, {TW: False, CT: False}) == f"{TW}='false' # single\n{CT}=\"false\"  # double\n"


def test_other_quoted_values_with_spaces_hash_and_escaped_quotes_untouched() -> None:
    text = f'GREETING="say \\"hi\\" # not a comment"\nNAME=\'it\\\'s # here\'\n{ADV}=true\n'
    new = edit(text, {ADV: False})
    assert new.splitlines()[:2] == text.splitlines()[:2]
    assert parse_env(new).values["GREETING"] == 'say "hi" # not a comment'
    assert parse_env(new).values["NAME"] == "it's # here"


def test_single_quoted_flag_with_escaped_quote_stays_parseable() -> None:
    # python-dotenv reads \' inside single quotes as an escaped quote.
    new = edit(f"{TW}='tr\\'ue' # odd\n", {TW: False})
    assert new == f"{TW}='false' # odd\n"
    assert parse_env(new).problems == []


def test_unquoted_value_with_inline_comment_keeps_the_comment() -> None:
    assert edit(f"{TW}=true   # set by deploy 2024-05\n", {TW: False}) == f"{TW}=false   # set by deploy 2024-05\n"


def test_empty_value_then_comment_keeps_the_comment() -> None:
    assert edit(f"{TW}= # was on\n", {TW: False}) == f"{TW}= false # was on\n"


def test_empty_value_at_end_of_line_does_not_eat_the_next_line() -> None:
    # Regression: `KEY=` followed by a line break used to become `KEY=\nfalseNEXT=…`,
    # breaking the next setting (here the database URL).
    text = f"{TW}=\nDATABASE_URL=postgres://db/x\r\n{CT}= \r\nAPI_PORT=8000\n"
    new = edit(text, {TW: False, CT: False})
    assert new == f"{TW}=false\nDATABASE_URL=postgres://db/x\r\n{CT}= false\r\nAPI_PORT=8000\n"
    assert parse_env(new).values["DATABASE_URL"] == "postgres://db/x"


def test_crlf_file_keeps_crlf_and_appends_with_crlf() -> None:
    text = f"A=1\r\n{TW}=true\r\nB=2\r\n"
    assert edit(text, {TW: False, CT: False}) == f"A=1\r\n{TW}=false\r\nB=2\r\n{CT}=false\r\n"


def test_mixed_line_endings_each_kept() -> None:
    text = f"A=1\r\n{TW}=true\nB=2\r\n{CT}=true\r\nC=3\n"
    assert edit(text, OFF) == f"A=1\r\n{TW}=false\nB=2\r\n{CT}=false\r\nC=3\n{ADV}=false\r\n"


def test_no_final_newline() -> None:
    assert edit(f"A=1\n{TW}=true", {TW: False}) == f"A=1\n{TW}=false"
    assert edit("A=1", {TW: False}) == f"A=1\n{TW}=false\n"
    assert edit("", {TW: False}) == f"{TW}=false\n"


def test_missing_flags_are_appended_not_left_to_default_true() -> None:
    new = edit("DATABASE_URL=x\n", OFF)
    assert new == f"DATABASE_URL=x\n{ADV}=false\n{TW}=false\n{CT}=false\n"
    assert parse_env(new).flags(RULES) == ALL_OFF


def test_duplicate_keys_every_flag_binding_rewritten_others_untouched() -> None:
    text = f"A=1\n{TW}=false\nA=2\n{TW}=true  # later one wins\n"
    new = edit(text, {TW: False})
    assert new == f"A=1\n{TW}=false\nA=2\n{TW}=false  # later one wins\n"
    assert parse_env(new).values["A"] == "2"


def test_key_without_equals_is_unset_and_gets_a_value() -> None:
    env = parse_env(f"{TW}\n{CT} # no value\n{ADV}#c\n")
    assert env.flags(RULES) == ALL_ON  # unset means true
    assert env.problems == []
    new = edit(env.text, OFF)
    assert new == f"{TW}=false\n{CT}=false # no value\n{ADV}=false #c\n"


def test_malformed_lines_kept_and_reported() -> None:
    text = f"A=1\nthis is not valid\n{TW}=true\nFOO BAR=2\n"
    new = edit(text, {TW: False})
    assert new == f"A=1\nthis is not valid\n{TW}=false\nFOO BAR=2\n"
    assert [str(p) for p in parse_env(new).problems] == [
        "line 2: cannot parse 'this is not valid'",
        "line 4: cannot parse 'FOO BAR=2'",
    ]


def test_flag_line_inside_another_keys_multiline_value_is_not_edited() -> None:
    text = f'CERT="-----BEGIN-----\n{TW}=true\n-----END-----"\n{TW}=true\n'
    new = edit(text, {TW: False})
    assert new == f'CERT="-----BEGIN-----\n{TW}=true\n-----END-----"\n{TW}=false\n'
    assert parse_env(new).values["CERT"] == f"-----BEGIN-----\n{TW}=true\n-----END-----"
    assert parse_env(new).flag_lines(RULES) == [(4, f"{TW}=false")]


def test_flag_only_inside_another_value_is_appended() -> None:
    text = f'NOTE="\n{CT}=false\n"'
    new = edit(text, {CT: False})
    assert new == text + f"\n{CT}=false\n"


def test_non_utf8_bytes_round_trip() -> None:
    data = b"LATIN1_NAME=Jos\xe9\n# caf\xc3\xa9 \xff\xfe\nENABLE_TIME_WEIGHTING=true\n"
    env = parse_env(data)
    assert env.encoded() == data
    new = env.with_flags({TW: False}, RULES)
    assert env.encoded(new) == data.replace(b"TIME_WEIGHTING=true", b"TIME_WEIGHTING=false")


def test_byte_order_mark_kept() -> None:
    assert edit(f"\ufeff{TW}=true\n", {TW: False}) == f"\ufeff{TW}=false\n"
    assert edit("\ufeff", {TW: False}) == f"\ufeff{TW}=false\n"


def test_unknown_flag_refused() -> None:
    with pytest.raises(EnvFileError, match="not a flag of this service's profile: ENABLE_EVERYTHING"):
        parse_env("").with_flags({"ENABLE_EVERYTHING": False}, RULES)


# ---------------------------------------------------------------------------
# Line numbers, problems, diff
# ---------------------------------------------------------------------------


def test_flag_lines_numbers_and_text() -> None:
    text = (
        "# header\n"  # 1
        "\n"  # 2
        "  \n"  # 3 (blank, with spaces)
        f"  export {ADV}=true # master\n"  # 4
        'KEY="a\n'  # 5
        'b"\n'  # 6
        f"{TW}='false'\n"  # 7
        f"{CT}\n"  # 8
    )
    assert parse_env(text).flag_lines(RULES) == [
        (4, f"  export {ADV}=true # master"),
        (7, f"{TW}='false'"),
        (8, CT),
    ]


def test_flag_lines_numbers_in_crlf_file_after_a_malformed_line() -> None:
    text = f"A=1\r\nnot valid\r\n\r\nB=2\r\n{TW}=true\r\n"
    assert parse_env(text).flag_lines(RULES) == [(5, f"{TW}=true")]


def test_problems_name_line_and_text() -> None:
    env = parse_env(f"A=1\n\n\n   \nnot an assignment\n{TW}=true\nFOO BAR=1\r\n")
    assert [(p.line, p.text) for p in env.problems] == [(5, "not an assignment"), (7, "FOO BAR=1")]
    assert str(env.problems[0]) == "line 5: cannot parse 'not an assignment'"
    assert env.flags(RULES) == ALL_ON


def test_problem_text_cut_to_80_characters() -> None:
    (problem,) = parse_env("x" * 200 + " y\n").problems
    assert str(problem) == f"line 1: cannot parse {'x' * 80!r}"


def test_unified_diff_shows_only_the_flag_lines() -> None:
    old = f"A=1\n{TW}=true\nB=2\n"
    new = parse_env(old).with_flags({TW: False, CT: False}, RULES)
    assert unified_diff("/opt/analyticbot/.env.production", old, new, shown=FLAG_NAMES) == (
        "--- /opt/analyticbot/.env.production (now)\n"
        "+++ /opt/analyticbot/.env.production (after)\n"
        "@@ -1,3 +1,4 @@\n"
        " A=…  (value not shown)\n"
        f"-{TW}=true\n"
        f"+{TW}=false\n"
        " B=…  (value not shown)\n"
        f"+{CT}=false\n"
    )


def test_unified_diff_never_shows_a_secret_beside_the_flags() -> None:
    old = f"DATABASE_URL=postgresql://analytic:hunter2@db/x\nexport JWT_SECRET=s3cr3t\n{TW}=true\nLAST=tok-999"
    diff = unified_diff("f", old, parse_env(old).with_flags({TW: False, CT: False}, RULES), shown=FLAG_NAMES)
    assert "hunter2" not in diff and "s3cr3t" not in diff and "tok-999" not in diff
    assert f"-{TW}=true" in diff and f"+{TW}=false" in diff and f"+{CT}=false" in diff
    assert " DATABASE_URL=…  (value not shown)" in diff


def test_unified_diff_without_final_newline_is_well_formed() -> None:
    old = "A=1"
    new = parse_env(old).with_flags({TW: False}, RULES)
    assert unified_diff("f", old, new, shown=None).splitlines()[2:] == [
        "@@ -1 +1,2 @@",
        "-A=1",
        "\\ No newline at end of file",
        "+A=1",
        f"+{TW}=false",
    ]


def test_unified_diff_empty_when_nothing_changes() -> None:
    old = f"{TW}=false\n"
    assert unified_diff("f", old, parse_env(old).with_flags({TW: False}, RULES), shown=FLAG_NAMES) == ""


def test_unified_diff_keeps_lines_whole_that_str_splitlines_would_split() -> None:
    old = f"NOTE=a\x0cb\u2028c\n{TW}=true\n"
    diff = unified_diff("f", old, parse_env(old).with_flags({TW: False}, RULES), shown=None)
    # One line, and its form feed and line separator shown escaped, never raw.
    assert "@@ -1,2 +1,2 @@\n NOTE=a\\x0cb\\u2028c\n" in diff


# ---------------------------------------------------------------------------
# The flag rule: os.getenv(NAME, "true").lower() == "true"
# ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("raw", "on"),
    [
        (None, True),
        ("true", True),
        ("TRUE", True),
        ("True", True),
        ("tRuE", True),
        ("false", False),
        ("", False),
        ("1", False),
        ("yes", False),
        ("on", False),
        (" true", False),
        ("true ", False),
    ],
)
def test_flag_value_is_the_services_rule(raw: str | None, on: bool) -> None:
    assert flag_value(raw) is on


def test_flagset_from_env_file() -> None:
    env = parse_env(f"{ADV}=True\n{TW}=0\n")  # content-type missing: true
    got = env.flags(RULES)
    assert got == flags(True, False, True)
    assert got.as_env() == {ADV: "true", TW: "false", CT: "true"}
    assert got.as_dict() == {"advanced": True, "time_weighting": False, "content_type": True}
    assert got.effective() == {"advanced": True, "time_weighting": False, "content_type": True}
    # the same words as the service's log line
    assert got.describe() == "Advanced: True, Time-weighting: False, Content-type: True"


def test_master_off_means_legacy_whatever_the_subflags() -> None:
    master_off = FlagSet.from_environ(RULES, {ADV: "false", TW: "true", CT: "true"})
    assert master_off.as_dict() == {"advanced": False, "time_weighting": True, "content_type": True}
    assert not any(master_off.effective().values()) and not any(ALL_OFF.effective().values())
    assert FlagSet.from_environ(RULES, {}) == ALL_ON


# ---------------------------------------------------------------------------
# Rollback then restore: every byte back
# ---------------------------------------------------------------------------


def through_the_journal(splices: tuple[Splice, ...]) -> list[Splice]:
    """The splices as a journal record carries them (JSON, UTF-8) and gives them back."""
    data = json.dumps([s.to_json() for s in splices], ensure_ascii=False).encode("utf-8")
    return [Splice.from_json(d) for d in json.loads(data)]


def check_restore(data: bytes, changes: dict[str, bool]) -> None:
    old = parse_env(data, "/srv/.env")
    rolled_text, undo = old.edit(changes, RULES)
    rolled = parse_env(old.encoded(rolled_text), "/srv/.env")

    back = apply_splices(rolled.text, through_the_journal(undo))

    assert back.exact, back.conflicts
    assert rolled.encoded(back.text) == data  # byte for byte, whatever the file looked like
    # The restore can itself be undone: the rollback's bytes again.
    again = apply_splices(back.text, through_the_journal(back.redo))
    assert again.exact and old.encoded(again.text) == old.encoded(rolled_text)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(env_files(), changes_st)
@example(b"ENABLE_ADVANCED_RECOMMENDATIONS=True\n", OFF)
@example(b'export ENABLE_TIME_WEIGHTING="TRUE"  # keep\r\n', OFF)
@example(b"ENABLE_CONTENT_TYPE_ANALYSIS='1'", OFF)
@example(b"ENABLE_ADVANCED_RECOMMENDATIONS=yes\nFOO=bar", OFF)
@example(b"FOO=bar", OFF)  # every flag missing: appended, then removed again
@example(b"", OFF)
def test_rollback_then_restore_gives_back_every_byte(data: bytes, changes: dict[str, bool]) -> None:
    check_restore(data, changes)


def test_restore_keeps_the_spelling_of_true() -> None:
    data = b"# flags\nENABLE_ADVANCED_RECOMMENDATIONS=True\nexport ENABLE_TIME_WEIGHTING='TRUE' # on\r\n"
    old = parse_env(data)
    rolled, undo = old.edit(OFF, RULES)
    assert "ENABLE_ADVANCED_RECOMMENDATIONS=false\n" in rolled and "ENABLE_CONTENT_TYPE_ANALYSIS=false" in rolled
    assert old.encoded(apply_splices(rolled, undo).text) == data


def test_restore_after_someone_else_edited_the_file_still_puts_the_flag_lines_back() -> None:
    data = b"ENABLE_ADVANCED_RECOMMENDATIONS=True # on\nFOO=1\n"
    old = parse_env(data)
    rolled, undo = old.edit(OFF, RULES)
    edited = "# a comment someone added at the top\n" + rolled.replace("FOO=1", "FOO=22")

    back = apply_splices(edited, undo)

    assert back.exact  # found by key and text: nothing was in the way
    assert back.text == "# a comment someone added at the top\nENABLE_ADVANCED_RECOMMENDATIONS=True # on\nFOO=22\n"


def test_restore_of_a_flag_line_changed_since_says_so() -> None:
    old = parse_env(b"ENABLE_ADVANCED_RECOMMENDATIONS=True\n")
    rolled, undo = old.edit({ADV: False}, RULES)
    changed = rolled.replace("=false", "=maybe")

    back = apply_splices(changed, undo)

    assert back.text == "ENABLE_ADVANCED_RECOMMENDATIONS=True\n"
    assert not back.exact and "changed since" in back.conflicts[0]
