"""Reading the service's log lines: the flag line, ERROR lines, best-times requests.

Lines are `[LEVEL] logger.name: message` or JSON `{"level","name","message"}`; the
flag line is matched anywhere in the line, as the runbook's grep does.

The window is a number of whole lines (the runbook's `tail -100`), however long they
are: the host itself judges every line in full with awk (ERROR anywhere, a JSON level
after a megabyte of message) and sends back a verdict and a clipped text per line. A
log that cannot be read in full within the probe timeout is an error, never a pass.
"""

from __future__ import annotations

import re
import shlex
from collections.abc import Sequence
from dataclasses import dataclass

from console import safe_json
from console.flags import FlagSet
from console.probes.snapshot import LogReport
from console.transport.base import Transport, TransportError

FLAG_LINE = re.compile(
    r"Feature flags - Advanced: (True|False), Time-weighting: (True|False), Content-type: (True|False)"
)
REQUEST_LINE = "Getting posting time metrics for channel"
_LEVEL = re.compile(r"^\s*\[(\w+)\]")
MAX_JSON_LINE = 1024 * 1024
# A JSON log record's level, wherever it sits in the line (after a long message too).
# ASCII-only case folding and blanks, exactly as the awk program on the host sees them.
_JSON_ERROR = re.compile(r'"(?:level|levelname|severity)"[ \t]*:[ \t]*"(?:error|critical|fatal)"', re.I | re.ASCII)
CLIP = 1000  # bytes of each line sent back for display; the verdicts are on the whole line
MAX_ANSWER = 512 * 1024  # what all the clipped lines may add up to (the transport keeps 1 MB)


def clip(window: int) -> int:
    """Bytes of each line sent back: CLIP, less for a very large window."""
    return max(80, min(CLIP, MAX_ANSWER // max(1, window)))


def line_level(line: str) -> str | None:
    """The log level of a line, if it has one we recognise."""
    stripped = line.lstrip()
    if stripped.startswith("{"):
        try:  # bounded: a line nested 100 000 deep must not take the probe down
            record = safe_json.loads(stripped, max_bytes=MAX_JSON_LINE)
        except ValueError:
            return None
        level = record.get("level") if isinstance(record, dict) else None
        return str(level).upper() if level else None
    m = _LEVEL.match(line)
    return m.group(1).upper() if m else None


def is_error(line: str) -> bool:
    """The runbook counts lines matching `grep ERROR`; also a [CRITICAL] level and a JSON
    level of error/critical/fatal anywhere in the line (after a long message too)."""
    return "ERROR" in line or "[CRITICAL]" in line or bool(_JSON_ERROR.search(line))


@dataclass(frozen=True)
class LogLine:
    """One log line as the host judged it: verdicts on the whole line, text clipped."""

    text: str
    error: bool = False
    request: bool = False
    length: int = 0  # bytes in the whole line

    @classmethod
    def of(cls, text: str) -> LogLine:
        """A line judged here (for lines already in memory, e.g. tests and the simulator)."""
        return cls(text, is_error(text), REQUEST_LINE in text, len(text.encode("utf-8", "surrogateescape")))


def latest_flags(lines: Sequence[str] | Sequence[LogLine]) -> tuple[FlagSet, str] | None:
    """The most recent "Feature flags" line and what it says."""
    for line in reversed(lines):
        text = line.text if isinstance(line, LogLine) else line
        m = FLAG_LINE.search(text)
        if m:
            a, t, c = (v == "True" for v in m.groups())
            return FlagSet(a, t, c), text
    return None


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
# become SUB first: awk's regular expressions and tolower() stop at a NUL.
_AWK = r"""
{
  sub(/\r$/, "")
  n++
  len[n] = length($0)
  e = (index($0, "ERROR") > 0 || index($0, "[CRITICAL]") > 0)
  if (!e && index($0, "\"") > 0) {
    if (tolower($0) ~ /"(level|levelname|severity)"[ \t]*:[ \t]*"(error|critical|fatal)"/) e = 1
  }
  r = (index($0, REQ) > 0)
  verdict[n] = e "" r
  t = substr($0, 1, C)
  isflag[n] = 0
  if (match($0, /Feature flags - Advanced: (True|False), Time-weighting: (True|False), Content-type: (True|False)/)) {
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


def awk_command(source: str, window: int) -> str:
    """``source`` (a shell pipeline writing log lines) judged line by line by awk on the host."""
    program = shlex.quote(_AWK)
    return (
        f"{{ {source} || echo {_FAILED}$? >&2; }} | LC_ALL=C tr '\\000' '\\032' "
        f"| LC_ALL=C awk -v W={int(window)} -v C={clip(window)} "
        f"-v REQ={shlex.quote(REQUEST_LINE)} {program}"
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
    """A log command such as ``journalctl -u analyticbot-api -n {lines}``."""
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
    transport: Transport, source: str, window: int, *, timeout: float, what: str, partial_ok: bool = False
) -> LogRead:
    """The judged lines of ``source``. TransportError when the log could not be read in full.

    ``partial_ok``: a source that failed but printed lines is still read (a log command).
    """
    result = await transport.run(awk_command(source, window), timeout=timeout)
    if result.timed_out:
        raise TransportError(f"{transport.where}: reading {what} took longer than {timeout:.0f}s")
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
        raise TransportError(f"{transport.where}: cannot read {what}: {reason}")
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
