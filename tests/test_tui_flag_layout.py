"""The dashboard and the focused view lay out however many flags a profile has (2 to 6), at
80×24 too: every flag has its column, named from the profile, and no line is cut."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from console.config import load_config
from console.flags import FlagSet
from console.probes.snapshot import EnvironmentSnapshot, FlagReport, HostSnapshot
from console.profile import PROFILE_DIR, load_profile
from screens.app import RollbackConsole
from screens.format import flag_width
from tests import tui_data
from tests.screen_text import screen_text

SEARCHD = (PROFILE_DIR / "searchd-semantic.toml").read_text(encoding="utf-8")
NAMES = ["semantic", "reranker", "spellfix", "synonyms", "freshness", "geo"]


def profile_with(n: int, directory: Path) -> Path:
    """searchd's profile with its first ``n`` of six flags (its two, then four more)."""
    head, rest = SEARCHD.split("[[flags.flag]]", 1)
    tail = rest[rest.index("# ----") :]
    flags = "".join(
        f'[[flags.flag]]\nid = "{name}"\nenv = "ENABLE_{name.upper()}"\nlabel = "{name}"\n\n' for name in NAMES[:n]
    )
    template = "flags: " + " ".join(f"{name}={{{name}}}" for name in NAMES[:n])
    text = head + flags + tail
    text = re.sub(r'(?m)^template = "flags: .*"$', f'template = "{template}"', text)
    # Its modes and actions name the first two flags; keep them (every count has those two).
    path = directory / f"searchd-{n}.toml"
    path.write_text(text, encoding="utf-8")
    return path


def snapshot_for(rules, env: str) -> EnvironmentSnapshot:
    ids = rules.ids
    env_file = FlagSet(rules, dict.fromkeys(ids, True))
    process = FlagSet(rules, {i: k % 2 == 0 for k, i in enumerate(ids)})  # drift on every other flag
    host = HostSnapshot(
        "local",
        "local",
        tui_data.T0,
        0.1,
        flags=FlagReport(env_file=env_file, process=process, log=env_file, pid=4242),
    )
    return EnvironmentSnapshot(env, "staging", tui_data.T0, 0.1, (host,))


@pytest.mark.parametrize("n", [2, 3, 4, 5, 6])
async def test_every_flag_has_its_column_at_80x24(n: int, tmp_path: Path) -> None:
    config = tui_data.make_config(root=tmp_path / "root", journal=False)
    profile_path = profile_with(n, tmp_path)
    rules = load_profile(profile_path).flags
    assert len(rules.flags) == n
    text = Path(config.path).read_text(encoding="utf-8")
    Path(config.path).write_text(f'profile = "{profile_path}"\n' + text, encoding="utf-8")
    config = load_config(config.path)
    app = RollbackConsole(config, probe=False, clock=lambda: tui_data.T0, who=tui_data.WHO)  # type: ignore[arg-type]
    app.animation_level = "none"
    async with app.run_test(size=(80, 24)) as pilot:
        for name in config.environments:
            app.live[name].update(snapshot_for(rules, name), app.matrix(name))
            app.env_updated.publish(name)
        await pilot.pause()
        await pilot.pause()
        shown = screen_text(app)
        rows = shown.splitlines()
        header = next(r for r in rows if "flags " in r and "sem" in r)
        width = flag_width(rules)
        for flag in rules.flags:
            assert flag.column[: width - 1] in header, (flag.column, header)  # its column, in the profile's words
        env_row = next(r for r in rows if r.lstrip("│┃ ").startswith("env file"))
        assert len(re.findall(r"\bon\b", env_row)) == n, env_row  # one cell per flag, none cut off
        assert all(len(r) <= 80 for r in rows)
