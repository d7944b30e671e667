"""Canaries: secrets planted where an operator's secrets really are — in the service's log,
in the env file (a plain value and a multi-line key), the database DSN, the probe password
and the webhook URL — and looked for in every output of every command (stdout, stderr,
--json, markdown, the written report, the journal, the webhook's bodies) and on every
screen of the console (walked with Pilot, each screen's text and its screenshot).
"""

from __future__ import annotations

import asyncio
import json
import re
from pathlib import Path
from urllib.parse import urlsplit

import pytest

from console.config import load_config
from screens.app import RollbackConsole
from tests.canary_support import screen_text
from tests.engine_support import Webhook
from tests.hostile.support import RAW_UNSAFE, run
from tests.phase4 import ADVANCED

pytestmark = pytest.mark.slow

ENV_CANARIES = ("CANARY-ENV-PLAIN-5e1", "CANARY-ENV-PEM-77a")
LOG_CANARIES = ("CANARY-LOG-DSN-c03", "CANARY-LOG-KV-9b2", "CANARY-LOG-BEARER-4d8")


def plant(sim) -> list[str]:
    """Put the canaries in place; return every value that must never be shown."""
    secrets = []
    for env in sim.environments:
        host = sim.host(env)
        text = host.env_file.read_text()
        planted = (
            f"JWT_SECRET_KEY={ENV_CANARIES[0]}\n"
            f'TLS_KEY="-----BEGIN PRIVATE KEY-----\n{ENV_CANARIES[1]}\n-----END PRIVATE KEY-----"\n'
        )
        host.env_file.write_text(text.replace(f"{ADVANCED}=", planted + f"{ADVANCED}=", 1))
        password = sim.password(env)
        dsn = sim.dsn(env) or ""
        dsn_password = urlsplit(dsn).password or ""
        with open(host.log_file, "a", encoding="utf-8") as fh:
            fh.write(
                f"[ERROR] analyticbot.db: cannot connect to postgresql://analyticbot:{LOG_CANARIES[0]}@db:5432/x\n"
                f"[ERROR] analyticbot.auth: bad login email=ops password={LOG_CANARIES[1]}\n"
                f"[WARNING] analyticbot.http: upstream said Authorization: Bearer {LOG_CANARIES[2]}\n"
                f"[ERROR] analyticbot.auth: refused password {password} from 10.0.0.9\n"
                f"[ERROR] analyticbot.db: lost {dsn}\n"
            )
        secrets += [password, dsn, dsn_password]
    return [s for s in (*ENV_CANARIES, *LOG_CANARIES, *secrets) if s]


def assert_no_canary(where: str, text: str, canaries: list[str]) -> None:
    for canary in canaries:
        assert canary not in text, f"a planted secret ({canary[:12]}…) reached {where}:\n{text[-3000:]}"


def test_no_planted_secret_reaches_any_output_of_any_command(make_simulation, tmp_path: Path) -> None:
    sim = make_simulation(environments=("staging", "production"), database=True)
    canaries = plant(sim)
    state = tmp_path / "state"
    with Webhook() as hook:
        token = urlsplit(hook.url).path.rsplit("/", 1)[-1]
        canaries.append(token)
        (tmp_path / "webhook").write_text(hook.url)
        sim.config_path.write_text(
            sim.config_path.read_text() + f'\n[notifications]\nwebhook = {{ file = "{tmp_path / "webhook"}" }}\n'
        )
        config = sim.config_path
        outputs: dict[str, str] = {}

        def cli(*args: str, code: int | tuple[int, ...] | None = None) -> str:
            answer = run(config, *args, state=state)
            assert "Traceback" not in answer.text, answer
            if code is not None:
                assert answer.code in ((code,) if isinstance(code, int) else code), answer
            outputs[" ".join(args)] = answer.text
            assert not RAW_UNSAFE.search(answer.text), f"raw control character from {args}"
            return answer.out

        cli("config", "validate", str(config), code=0)
        cli("status", code=(0, 1))
        cli("status", "--json", code=(0, 1))
        cli("check", "staging", code=(0, 1))
        cli("check", "staging", "--json", code=(0, 1))
        for action in ("quick", "partial-time-weighting", "partial-content-type", "code", "database", "full"):
            cli("plan", action, "--env", "staging", code=(0, 1, 2))
        out = cli("rollback", "quick", "--env", "staging", "--yes", "--reason", "canary sweep", code=0)
        run_id = re.search(r"run (r-\S+):", out).group(1)  # type: ignore[union-attr]
        cli("rollback", "quick", "--env", "production", "--yes", "--json", "--emergency", "P1", "--reason",
            "canary sweep on production", code=(0, 1))  # fmt: skip
        pending = cli("rollback", "partial-content-type", "--env", "production", "--yes", "--wait", "0", code=2)
        pending_id = re.search(r"run (r-\S+) stays pending", pending)
        if pending_id:
            cli("approve", pending_id.group(1), code=(0, 2))
        cli("history", code=0)
        cli("history", "--markdown", code=0)
        cli("history", "--json", code=0)
        cli("history", "--verify", code=0)
        cli("report", run_id, code=0)
        cli("report", run_id, "-o", str(tmp_path / "incident.md"), code=0)
        cli("checklist", run_id, code=(0, 1))
        cli("checklist", run_id, "--tick", "dashboards", "--note", "grafana ok", code=(0, 1))
        cli("restore", "--env", "staging", "--run", run_id, "--yes", code=0)
        cli("unlock", "--env", "staging", "--reason", "canary sweep", code=0)
        cli("drill", "--list", code=0)
        posts = json.dumps([p["json"] for p in hook.posts])  # the bodies; the path is its own URL

    for what, text in outputs.items():
        assert_no_canary(f"`rollback-console {what}`", text, canaries)
    assert_no_canary("the written incident report", (tmp_path / "incident.md").read_text(), canaries)
    assert_no_canary("the journal", (sim.directory / "journal.jsonl").read_text(), canaries)
    assert hook.posts, "the webhook was never called: the sweep would prove nothing about it"
    assert_no_canary("a webhook body", posts, canaries)
    crashes = state / "rollback-console" / "crashes"
    assert not crashes.exists() or not any(crashes.iterdir())

    # Every screen of the console, on the same journal and hosts.
    seen = asyncio.run(walk_the_console(config))
    for name, text in seen.items():
        assert_no_canary(f"the {name} screen", text, canaries)
    assert {"dashboard", "environment", "history", "report", "checklist", "escalation", "wizard"} <= set(seen)


async def walk_the_console(config: Path) -> dict[str, str]:
    app = RollbackConsole(load_config(config))
    seen: dict[str, str] = {}

    async def settle(pilot, until: str | None = None) -> None:
        for _ in range(100):
            await pilot.pause(0.1)
            if until is None or until in screen_text(app):
                return

    async with asyncio.timeout(120):
        async with app.run_test(size=(80, 24)) as pilot:
            await settle(pilot, "ERROR")
            seen["dashboard"] = screen_text(app)
            await pilot.press("enter")
            await settle(pilot, "last flag line")
            seen["environment"] = screen_text(app)
            await pilot.press("escape")
            await pilot.press("h")
            await settle(pilot, "Enter: the run's incident report")
            seen["history"] = screen_text(app)
            await pilot.press("enter")
            if type(app.screen).__name__ != "ReportScreen":  # Enter goes to the table (screens' issue)
                app.screen.action_report()  # type: ignore[attr-defined]
            await settle(pilot, "Incident report")
            assert type(app.screen).__name__ == "ReportScreen"
            seen["report"] = screen_text(app)
            await pilot.press("escape")
            await pilot.press("escape")
            await pilot.press("c")
            await settle(pilot, "checklist")
            seen["checklist"] = screen_text(app)
            await pilot.press("escape")
            await pilot.press("e")
            await settle(pilot, "Escalation")
            seen["escalation"] = screen_text(app)
            await pilot.press("escape")
            await pilot.press("r")
            await pilot.pause(0.5)
            await pilot.press("ctrl+n")
            await settle(pilot, "value not shown")
            seen["wizard"] = screen_text(app)
            await pilot.press("escape")
            await pilot.press("q")
    return seen
