"""Reading the service's log lines: the flag line, error lines, functional-probe requests,
each as the service's profile describes them (LogRules).

Lines are plain (the profile's layout, e.g. `[LEVEL] logger.name: message`) or JSON
records; the flag line is matched anywhere in the line, as the runbook's grep does.

The window is a number of whole lines (the runbook's `tail -100`), however long they
are: the host itself judges every line in full with awk (ERROR anywhere, a JSON level
after a megabyte of message) and sends back a verdict and a clipped text per line. A
log that cannot be read in full within the probe timeout is an error, never a pass.
"""

from __future__ import annotations

import dataclasses
import functools
import re
import secrets
import shlex
from collections.abc import Sequence
from dataclasses import dataclass

from console.flags import FlagSet
from console.probes.snapshot import LogReport
from console.profile.model import FlagRules, LogFormat
from console.profile.patterns import ere_escape, split
from console.transport.base import CommandResult, Transport, TransportError

MAX_JSON_LINE = 1024 * 1024
CLIP = 1000  # bytes of each line sent back for display; the verdicts are on the whole line
MAX_ANSWER = 512 * 1024  # what all the clipped lines may add up to (the transport keeps 1 MB)


@dataclass(frozen=True)
class LogRules:
    """How one service's log is judged, from its profile: which lines are errors, which mark
    a functional-probe request, and which report the flags."""

    log: LogFormat

    @functools.cached_property
    def level_marks(self) -> tuple[str, ...]:
        """An error level as a plain line writes it, e.g. "[CRITICAL]": the level with the
        template's characters either side of it (found anywhere, as `grep` would)."""
        if self.log.plain is None:
            return ()
        pieces = split(self.log.plain.template)
        at = next((i for i, (k, t) in enumerate(pieces) if k == "field" and t == "level"), None)
        if at is None:
            return ()
        before = pieces[at - 1][1][-1:] if at > 0 and pieces[at - 1][0] == "text" else ""
        after = pieces[at + 1][1][:1] if at + 1 < len(pieces) and pieces[at + 1][0] == "text" else ""
        if not before and at == 0:
            return tuple(f"{level}{after}" for level in self.log.error_levels)  # at the start only
        return tuple(f"{before}{level}{after}" for level in self.log.error_levels)

    @functools.cached_property
    def _level_at_start(self) -> bool:
        return self.log.plain is not None and split(self.log.plain.template)[:1] == [("field", "level")]

    @functools.cached_property
    def json_level_ere(self) -> str | None:
        """A JSON record's error level, wherever it sits in the line (lower case: awk's tolower)."""
        if self.log.json is None or not self.log.error_levels:
            return None
        keys = "|".join(ere_escape(k.lower()) for k in self.log.json.level)
        levels = "|".join(ere_escape(v.lower()) for v in self.log.error_levels)
        return f'"({keys})"[ \\t]*:[ \\t]*"({levels})"'

    @functools.cached_property
    def _json_level_re(self) -> re.Pattern[str] | None:
        ere = self.json_level_ere
        # ASCII-only case folding and blanks, exactly as the awk program on the host sees them.
        return re.compile(ere, re.I | re.ASCII) if ere else None

    @functools.cached_property
    def flag_re(self) -> re.Pattern[str]:
        return self.log.flag_line.regex

    def is_error(self, line: str) -> bool:
        """The runbook's `grep ERROR`: a line holding an error word, an error level, or a JSON
        record whose level is an error level (after a long message too)."""
        if any(w in line for w in self.log.error_text):
            return True
        if self._level_at_start:
            if line.lstrip(" \t").startswith(self.level_marks):
                return True
        elif any(m in line for m in self.level_marks):
            return True
        return bool(self._json_level_re and self._json_level_re.search(line))

    def is_flag_line(self, line: str) -> bool:
        return bool(self.flag_re.search(line))

    def line(self, text: str) -> LogLine:
        """A line judged here (for lines already in memory, e.g. tests and the simulator)."""
        return LogLine(
            text,
            self.is_error(text),
            self.log.request_line in text,
            len(text.encode("utf-8", "surrogateescape")),
        )

    def latest_flags(self, lines: Sequence[str] | Sequence[LogLine], rules: FlagRules) -> tuple[FlagSet, str] | None:
        """The most recent flag line and what it says."""
        for line in reversed(lines):
            text = line.text if isinstance(line, LogLine) else line
            values = self.log.flag_line.parse(text)
            if values is not None:
                return FlagSet(rules, values), text
        return None

    @functools.cached_property
    def awk_program(self) -> str:
        return _awk_program(self)


@functools.lru_cache(maxsize=32)
def rules_for(log: LogFormat) -> LogRules:
    return LogRules(log)


def clip(window: int) -> int:
    """Bytes of each line sent back: CLIP, less for a very large window."""
    return max(80, min(CLIP, MAX_ANSWER // max(1, window)))


@dataclass(frozen=True)
class LogLine:
    """One log line as the host judged it: verdicts on the whole line, text clipped."""

    text: str
    error: bool = False
    request: bool = False
    length: int = 0  # bytes in the whole line


def summarize(lines: Sequence[LogLine], *, span: str | None = None, tail: int = 40) -> LogReport:
    """Errors and requests in a window of whole lines; ``span`` says what the window is."""
    errors = [line.text for line in lines if line.error]
    return LogReport(
        window=len(lines),
        error_lines=len(errors),
        error_samples=tuple(errors[-3:]),
        requests=sum(1 for line in lines if line.request),
        tail=tuple(line.text for line in lines[-tail:]),
        span=span or f"the last {len(lines)} lines",
    )


# --- on the host -----------------------------------------------------------------------------

# Reads lines on stdin; at the end prints the last W lines as `L <error><request> <bytes>\t<text>`,
# the last flag line before them as `F …`, then `END <count>` (so a cut-off answer shows).
# LC_ALL=C: bytes, not characters, whatever the host's locale and the log's encoding. NUL bytes
# become SUB first: awk's regular expressions and tolower() stop at a NUL. The error, request
# and flag-line tests are the profile's (LogRules), written into the program as literals.
_AWK = r"""
{
  sub(/\r$/, "")
  n++
  len[n] = length($0)
  e = (@ERROR@)
  @JSON@
  r = (index($0, @REQ@) > 0)
  verdict[n] = e "" r
  t = substr($0, 1, C)
  isflag[n] = 0
  if (match($0, /@FLAG@/)) {
    isflag[n] = 1
    if (RSTART + RLENGTH - 1 > C) t = t " ... " substr($0, RSTART, RLENGTH)
  }
  text[n] = t
  if (n > W) { delete text[n - W] }
  if (isflag[n]) { lastflag = n; flagtext = t }
}
END {
  first = n - W + 1
  if (first < 1) first = 1
  if (lastflag > 0 && lastflag < first) print "F 00 " len[lastflag] "\t" flagtext
  for (i = first; i <= n; i++) print "L " verdict[i] " " len[i] "\t" text[i]
  print "END " (n + 0)
}
"""
_FAILED = "rollback-console:read-failed:"


def _awk_string(text: str) -> str:
    """``text`` as an awk string literal."""
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n") + '"'


def _awk_program(rules: LogRules) -> str:
    tests = [f"index($0, {_awk_string(w)}) > 0" for w in rules.log.error_text]
    if rules._level_at_start:  # the level opens the line: only there
        marks = "|".join(ere_escape(m) for m in rules.level_marks)
        tests += [f"$0 ~ /^[ \\t]*({marks})/"] if marks else []
    else:
        tests += [f"index($0, {_awk_string(m)}) > 0" for m in rules.level_marks]
    json = rules.json_level_ere
    return (
        _AWK.replace("@ERROR@", " || ".join(tests) or "0")
        .replace("@JSON@", f'if (!e && index($0, "\\"") > 0) {{ if (tolower($0) ~ /{json}/) e = 1 }}' if json else "")
        .replace("@REQ@", _awk_string(rules.log.request_line))
        .replace("@FLAG@", rules.log.flag_line.ere)
    )


def awk_command(source: str, window: int, rules: LogRules) -> str:
    """``source`` (a shell pipeline writing log lines) judged line by line by awk on the host."""
    program = shlex.quote(rules.awk_program)
    return (
        f"{{ {source} || echo {_FAILED}$? >&2; }} | LC_ALL=C tr '\\000' '\\032' "
        f"| LC_ALL=C awk -v W={int(window)} -v C={clip(window)} {program}"
    )


def _refuse_unless_regular(p: str) -> str:
    """Shell that fails, saying what ``p`` is, unless it is a regular file (the words of
    console/files.py, so a log reads like every other file we refuse)."""
    kinds = (
        ("-p", "a named pipe (FIFO)"),
        ("-c", "a character device"),
        ("-b", "a block device"),
        ("-S", "a socket"),
        ("-d", "a directory"),
    )
    tests = "".join(f"elif [ {t} {p} ]; then echo 'is {k}, not a regular file' >&2; false; " for t, k in kinds)
    return (
        f"if [ ! -e {p} ]; then echo 'No such file or directory' >&2; false; "
        f"{tests}elif [ ! -f {p} ]; then echo 'is not a regular file' >&2; false; "
    )


def file_source(path: str, lines: int) -> str:
    """The last ``lines`` whole lines of a log file; a FIFO or a directory is refused first."""
    p = shlex.quote(path)
    return f"{_refuse_unless_regular(p)}else tail -n {int(lines)} -- {p}; fi"


def since_source(path: str, offset: int) -> str:
    """What was written to a log file after byte ``offset`` (fails if the log shrank)."""
    p = shlex.quote(path)
    return (
        f"{_refuse_unless_regular(p)}"
        # -L: the size of what tail reads (the offset is taken the same way, through symlinks)
        f'elif [ "$(stat -L -c %s -- {p})" -lt {int(offset)} ]; then echo rotated >&2; false; '
        f"else tail -c +{int(offset) + 1} -- {p}; fi"
    )


def command_source(command: str, lines: int) -> str:
    """A log command such as ``journalctl -u my-service -n {lines}``."""
    return f"( {command.replace('{lines}', str(int(lines)))} )"


@dataclass(frozen=True)
class LogRead:
    lines: list[LogLine]  # the window: the last lines read
    total: int  # lines read from the source
    before: LogLine | None = None  # the last flag line before the window

    @property
    def with_flag_line(self) -> list[LogLine]:
        """The window, after the last flag line read before it (for latest_flags)."""
        return ([self.before] if self.before else []) + self.lines


async def read_lines(
    transport: Transport,
    source: str,
    window: int,
    *,
    rules: LogRules,
    timeout: float,
    what: str,
    partial_ok: bool = False,
) -> LogRead:
    """The judged lines of ``source``. TransportError when the log could not be read in full.

    ``partial_ok``: a source that failed but printed lines is still read (a log command).
    """
    result = await transport.run_short(awk_command(source, window, rules), timeout=timeout)
    return _judged(result, transport.where, window, timeout=timeout, what=what, partial_ok=partial_ok)


# Caps what the first command of a shared session may print (a pid: a few bytes).
FIRST_MAX = 4096


async def read_lines_after(
    transport: Transport,
    first: str,
    source: str,
    window: int,
    *,
    rules: LogRules,
    timeout: float,
    what: str,
    partial_ok: bool = False,
) -> tuple[CommandResult, LogRead | TransportError]:
    """``first`` (a command, e.g. the pid command) and then the log, in one command on the
    host instead of two. ``first`` runs as it would alone (``/bin/sh -c``); its result comes
    back apart — its exit status, its stdout (up to FIRST_MAX bytes, trailing newlines
    dropped) and its stderr — and so does the log's read, or why it failed. Both within one
    ``timeout``: a ``first`` that hangs leaves the log unread (said so)."""
    nonce = "rollback-console:next:" + secrets.token_hex(8)
    script = (
        f"__rc_out=$(/bin/sh -c {shlex.quote(first)}); __rc_status=$?; "
        f'printf \'%.{FIRST_MAX}s\\n{nonce} %s\\n\' "$__rc_out" "$__rc_status"; echo {nonce} >&2; '
        + awk_command(source, window, rules)
    )
    result = await transport.run_short(script, timeout=timeout)
    out_head, found, out_rest = result.stdout.partition(f"\n{nonce} ")
    err_head, err_found, err_rest = result.stderr.partition(f"{nonce}\n")
    status, _, log_out = out_rest.partition("\n")
    if not found or not status.strip().isdigit():  # cut off before ``first`` ended
        return (
            CommandResult(first, None, out_head, result.stderr, result.elapsed_s, result.timed_out, result.truncated),
            TransportError(f"{transport.where}: {what} was not read: {_unfinished(result, timeout)}"),
        )
    first_result = CommandResult(first, int(status), out_head, err_head, result.elapsed_s)
    log_result = dataclasses.replace(result, stdout=log_out, stderr=err_rest if err_found else "")
    try:
        return first_result, _judged(
            log_result, transport.where, window, timeout=timeout, what=what, partial_ok=partial_ok
        )
    except TransportError as exc:
        return first_result, exc


def _unfinished(result: CommandResult, timeout: float) -> str:
    if result.timed_out:
        return f"the command before it took longer than {timeout:.0f}s"
    detail = " ".join(result.stderr.split())[-300:]
    return f"the session ended early ({result.summary()}{': ' + detail if detail else ''})"


def _judged(result: CommandResult, where: str, window: int, *, timeout: float, what: str, partial_ok: bool) -> LogRead:
    """The awk program's answer (awk_command) as a LogRead; TransportError unless it is whole."""
    if result.timed_out:
        raise TransportError(f"{where}: reading {what} took longer than {timeout:.0f}s")
    failed = result.stderr.find(_FAILED)
    out = result.stdout.split("\n")
    end = next((row for row in reversed(out[-3:]) if row.startswith("END ")), None)
    total = int(end[4:]) if end and end[4:].strip().isdigit() else None
    source_failed = failed >= 0 and not (partial_ok and total)
    if source_failed or result.exit_status != 0 or total is None or result.truncated:
        reason = result.stderr[:failed] if failed >= 0 else result.stderr
        reason = " ".join(reason.split())[-300:] or result.summary()
        if result.truncated:
            reason = "the answer was cut off"
        raise TransportError(f"{where}: cannot read {what}: {reason}")
    lines, before = [], None
    for row in out:
        head, tab, text = row.partition("\t")
        parts = head.split(" ")
        if not tab or len(parts) != 3 or parts[0] not in ("L", "F") or len(parts[1]) != 2:
            continue
        text = text.replace("\x1a", "\ufffd")  # NUL bytes, which awk cannot see past (tr made them SUB)
        length = int(parts[2]) if parts[2].isdigit() else len(text)
        if length > clip(window):
            text += f" … [{length} bytes in all]"
        line = LogLine(text, parts[1][0] == "1", parts[1][1] == "1", length)
        if parts[0] == "F":
            before = line
        else:
            lines.append(line)
    return LogRead(lines, total, before)
