"""An environment names its service profile (the config's `profile` key): config keeps the
path, the runbook package reads it once on first use, troubleshooting speaks its words
with the environment's own commands, and `config validate` reads it with its own lines."""

from __future__ import annotations

from pathlib import Path

import pytest
from textual.widgets import Static, TabbedContent

from console.config import ConfigError, load_config
from console.engine.plan import Remedy
from console.engine.runner import Decision, Failure
from console.profile import DEFAULT_PROFILE, PROFILE_DIR, profile_of
from console.runbook import troubleshooting
from screens.app import RollbackConsole
from tests import tui_data
from tests.engine_support import MakeSimulation, Operator, run_engine
from tests.test_config import validate  # `config validate FILE` as a real process

ROOT = Path(__file__).resolve().parent.parent
NEW_TITLE = "Flags ignored by the running API"
NEW_FIX = "diff -u {env_file}.bak {env_file}"


def modified_profile(where: Path) -> Path:
    """The Phase 4 profile with issue 1 retitled and its first fix line changed."""
    text = DEFAULT_PROFILE.read_text()
    changes = (
        ('title = "Environment changes not taking effect"', f'title = "{NEW_TITLE}"'),
        ('  "grep ENABLE_ {env_file}",\n  "{reload_command}",', f'  "{NEW_FIX}",\n  "{{reload_command}}",'),
        ('directory = "../drills"', f'directory = "{PROFILE_DIR.parent / "drills"}"'),
    )
    for old, new in changes:
        assert text.count(old) == 1, old
        text = text.replace(old, new)
    where.parent.mkdir(parents=True, exist_ok=True)
    where.write_text(text)
    return where


def config_with(root: Path, top: str = "", staging: str = "") -> Path:
    """tui_data's config (commands `true` and `echo 4242`), with `top` before its first
    table and `staging` added to [environments.staging]."""
    tui_data.make_config(root=root)
    path = root / "console.toml"
    text = path.read_text()
    text = text.replace("[environments.staging]\n", f"[environments.staging]\n{staging}\n", 1)
    path.write_text(top + "\n" + text)
    return path


def test_no_profile_key_means_the_default_profile(tmp_path: Path) -> None:
    config = load_config(config_with(tmp_path / "c"))
    env = config.environments["staging"]
    assert env.profile is None
    assert profile_of(env).path == str(DEFAULT_PROFILE.resolve())
    assert profile_of(env) is profile_of(config.environments["production"]), "one parse per path"
    titles = [s.title for s in troubleshooting.assess(env, tui_data.snapshots()["staging"])]
    assert titles == [
        "Issue 1: Environment changes not taking effect",
        "Issue 2: API won't start after rollback",
        "Issue 3: Database rollback fails",
        "Issue 4: Partial rollback - only one flag changed",
    ]


def test_a_top_level_profile_is_every_environments_and_one_may_name_its_own(tmp_path: Path) -> None:
    root = tmp_path / "c"
    mine = str(PROFILE_DIR / "searchd-semantic.toml")
    path = config_with(root, top='profile = "ops/modified.toml"', staging=f'profile = "{mine}"')
    modified_profile(root / "ops" / "modified.toml")
    config = load_config(path)
    assert config.environments["production"].profile == str(root / "ops" / "modified.toml"), "relative to the config"
    assert config.environments["staging"].profile == mine


def test_a_profile_that_is_not_there_is_the_configs_problem(tmp_path: Path) -> None:
    path = config_with(tmp_path / "c", staging='profile = "nowhere.toml"')
    with pytest.raises(ConfigError) as caught:
        load_config(path)
    (problem,) = caught.value.problems
    assert problem.key == "environments.staging.profile" and "no such profile file" in problem.message
    assert problem.line == path.read_text().splitlines().index('profile = "nowhere.toml"') + 1


def test_troubleshooting_speaks_the_environments_profile_with_its_commands(tmp_path: Path) -> None:
    root = tmp_path / "c"
    path = config_with(root, top='profile = "ops/modified.toml"')
    modified_profile(root / "ops" / "modified.toml")
    env = load_config(path).environments["staging"]
    first, *rest = troubleshooting.assess(env, tui_data.snapshots()["staging"])
    assert first.title == f"Issue 1: {NEW_TITLE}" and first.applies
    env_file = f"{root}/staging.env"
    assert first.fix == (
        f"diff -u {env_file}.bak {env_file}",
        "true",  # no reload command, no forced restart: the restart command
        "cat /proc/$(echo 4242)/environ | tr '\\0' '\\n' | grep ENABLE_",
    )
    assert rest[0].title == "Issue 2: API won't start after rollback"
    assert rest[0].fix[0] == "journalctl -u analyticbot-api -n 50 --no-pager"
    (finding,) = [f for f in troubleshooting.findings(env, tui_data.snapshots()["staging"]) if f.issue == first.issue]
    assert finding.title == first.title and finding.fix == first.fix


async def test_the_troubleshooting_tab_shows_the_profiles_words(tmp_path: Path) -> None:
    root = tmp_path / "c"
    path = config_with(root, top='profile = "ops/modified.toml"')
    modified_profile(root / "ops" / "modified.toml")
    config = load_config(path)
    app = RollbackConsole(config, probe=False, clock=lambda: tui_data.T0, who=tui_data.WHO)  # type: ignore[arg-type]
    app.animation_level = "none"
    async with app.run_test(size=(160, 48)) as pilot:
        tui_data.feed(app)
        await pilot.pause()
        await pilot.press("enter")  # staging
        await pilot.pause()
        app.screen.query_one(TabbedContent).active = "tab-trouble"
        await pilot.pause()
        text = str(app.screen.query_one("#trouble", Static).render())
    assert f"Issue 1: {NEW_TITLE}" in text and "Environment changes not taking effect" not in text
    assert f"$ diff -u {root}/staging.env.bak {root}/staging.env" in text
    assert "Issue 4: Partial rollback - only one flag changed" in text


def test_config_validate_reads_each_environments_profile_and_names_its_lines(tmp_path: Path) -> None:
    root = tmp_path / "c"
    path = config_with(root, staging='profile = "broken.toml"')
    broken = modified_profile(root / "broken.toml")
    text = broken.read_text().replace('applies = ["stale_process"]', 'applies = ["stale_proces"]', 1)
    broken.write_text(text)
    line = text.splitlines().index('applies = ["stale_proces"]') + 1
    done = validate(path)
    assert done.returncode == 2 and done.stdout == ""
    first = done.stderr.splitlines()[0]
    assert first.startswith(f"{broken}:{line}: troubleshooting[0].applies: "), done.stderr
    assert f"{broken}: 1 problem(s): the profile of staging cannot be used" in done.stderr

    fixed = modified_profile(root / "broken.toml")
    done = validate(path)
    assert done.returncode == 0, done.stderr
    assert done.stdout.endswith(f"; profiles: staging {fixed}, production analyticbot-phase4.toml (the default)\n")


def test_a_broken_profile_is_said_in_troubleshooting_not_hidden(tmp_path: Path) -> None:
    root = tmp_path / "c"
    path = config_with(root, staging='profile = "broken.toml"')
    (root / "broken.toml").write_text('[profile]\nformat = 1\nid = "x"\n')
    env = load_config(path).environments["staging"]
    (status,) = troubleshooting.assess(env, tui_data.snapshots()["staging"])
    assert status.applies is None and status.verdict == "cannot assess"
    assert status.evidence.startswith(f"the service profile cannot be read: {root / 'broken.toml'}:")
    assert status.fix == (f"rollback-console config validate --profile {root / 'broken.toml'}",)
    assert troubleshooting.findings(env, tui_data.snapshots()["staging"]) == []


async def test_a_failed_restart_offers_the_profiles_remedy(make_simulation: MakeSimulation, tmp_path: Path) -> None:
    """Issue 1's remedy (the forced fresh start) is the profile's: its title, its commands
    filled in with the environment's own."""
    sim = make_simulation()
    sim.inject("staging", stale_restart=True)
    mine = modified_profile(tmp_path / "mine.toml")
    title = "Recreate the container so it reads the env file"
    text = mine.read_text()
    assert text.count('title = "Force a fresh start that re-reads the env file"') == 1
    mine.write_text(text.replace('title = "Force a fresh start that re-reads the env file"', f'title = "{title}"'))
    config = Path(sim.config_path)
    config.write_text(f'profile = "{mine}"\n' + config.read_text())
    seen: list[object] = []

    def look(failure: Failure) -> Decision:
        problem = failure.hosts["staging-1"]
        seen.append(problem.remedy)
        return Decision("fix")

    outcome = await run_engine(sim.config_path, "quick", decide=Operator([look]))
    assert outcome.result.outcome == "succeeded", outcome.result.message
    (remedy,) = seen
    assert isinstance(remedy, Remedy)
    assert remedy.title == title and remedy.commands == (sim.command("staging", "force_restart_command"),)
