"""docs/your-own-runbook.md walks a reader from an empty file to a simulated drill: its TOML
blocks, taken in order, are one profile. This runs that walk: the checker says ok, the
simulator plays the service, a drill of its scenario is rehearsed and scored."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

from tests.test_drills import Drill

DOC = Path(__file__).resolve().parent.parent / "docs" / "your-own-runbook.md"


def doc_profile(directory: Path) -> Path:
    text = DOC.read_text(encoding="utf-8")
    walk = text[text.index("## From an empty file") : text.index("## From the profile to a simulated drill")]
    blocks = re.findall(r"```toml\n(.*?)```", walk, re.S)
    assert len(blocks) == 7, "the page's profile is in its seven ```toml blocks"
    path = directory / "notes.toml"
    path.write_text("\n".join(blocks), encoding="utf-8")
    return path


def test_the_page_profile_validates_and_its_drill_is_rehearsed_and_scored(tmp_path: Path) -> None:
    profile = doc_profile(tmp_path)
    checked = subprocess.run(
        [sys.executable, "-m", "console", "config", "validate", "--profile", str(profile)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert checked.returncode == 0, checked.stdout + checked.stderr
    assert f"{profile}: ok — profile notes-api: 2 flags" in checked.stdout, checked.stdout

    d = Drill(tmp_path, "slow-suggest", extra=["--profile", str(profile)])
    try:
        assert "Suggest got slow" in d.printed
        (env,) = d.cli_json("status", "staging", "--json")["environments"]
        assert env["recommendation"]["action"] == "all-off", env["recommendation"]
        assert env["hosts"][0]["flags"]["env_file"] == {"smart_tags": True, "summaries": True}
        rolled = d.cli("rollback", "all-off", "--env", "staging", "--yes", "--reason", "suggest 2.5 s")
        assert rolled.returncode == 0, rolled.stdout + rolled.stderr
        (env,) = d.cli_json("status", "staging", "--json")["environments"]
        assert env["hosts"][0]["flags"]["process"] == {"smart_tags": False, "summaries": False}
        text = d.end()
    finally:
        d.close()
    assert "Drill scorecard — Suggest got slow" in text
    assert "RIGHT: expected all-off; first chose all-off; recovered by all-off" in text
    card = d.scored()
    assert card["right_action"] and card["recovered_by"] == "all-off"
