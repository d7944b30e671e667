"""The incident report written to a file, once for both faces (`report RUN_ID -o FILE`,
the checklist's o): the file replaced whole, a `report_written` record, the checklist
item ticked. Never waits on a named pipe, never writes into a device."""

from __future__ import annotations

import contextlib
import os
from pathlib import Path

from console import files
from console.config.model import Config
from console.journal import Journal, incident_report
from console.runbook import checklist
from console.runbook.checklist import checklist_of


class ReportError(OSError):
    """The report could not be written; nothing was (the message says what and where)."""


def default_path(config: Config, run_id: str) -> Path:
    """Beside the journal, where every operator of the bastion can find it."""
    return config.journal_path.parent / "reports" / f"{run_id}.md"


def write_report(config: Config, journal: Journal, run_id: str, path: str | os.PathLike[str] | None = None) -> Path:
    """Write ``run_id``'s incident report to ``path`` (default: ``default_path``), journal
    that, and tick the checklist's report item. Returns where it went."""
    run = journal.run(run_id)
    text = incident_report(
        run, checklist=checklist_of(config, run.env), journal_path=journal.path, problems=journal.verify_checkpointed()
    )
    target = Path(path) if path is not None else default_path(config, run.run_id)
    if path is None:
        try:
            target.parent.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise ReportError(f"cannot write the report to {target}: {exc.strerror or exc}") from None
    write_text(target, text, what="the report")
    journal.append("report_written", run=run.run_id, env=run.env, data={"path": os.path.abspath(target)})
    checklist.tick_automatic(config, journal, run.run_id)
    return target


def write_text(target: Path, text: str, *, what: str) -> None:
    """Replace ``target`` whole with ``text``; ReportError (nothing written) saying why not."""
    where = f"cannot write {what} to {target}"
    try:
        st = target.stat()
    except FileNotFoundError:
        st = None
    except OSError as exc:
        raise ReportError(f"{where}: {exc.strerror or exc}") from None
    if st is not None:
        kind = files.kind_name(st.st_mode)
        if kind == "a directory":
            raise ReportError(f"{where}: it is a directory (give a file name, e.g. {target / 'report.md'})")
        if kind:
            raise ReportError(f"{where}: it is {kind}, not a regular file")
    parent = target.parent
    if not parent.is_dir():
        raise ReportError(f"{where}: the directory {parent} does not exist")
    tmp = parent / f".{target.name}.rollback-console.{os.getpid()}.tmp"
    try:
        with open(tmp, "x", encoding="utf-8") as fh:
            fh.write(text)
        os.replace(tmp, target)
    except OSError as exc:
        with contextlib.suppress(OSError):
            tmp.unlink()
        raise ReportError(f"{where}: {exc.strerror or exc}") from None
