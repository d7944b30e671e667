"""Hosts from an Ansible inventory: real INI and YAML files read by the real
ansible-inventory (ansible-core, from the test extra), the problems `config validate`
reports with file, line and key, and a fleet defined only by an inventory rolled back over
a real OpenSSH server."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest
import tomli_w

from console.config import ConfigError, load_config
from console.config import inventory as inventories
from console.config.model import Host
from tests.engine_support import MakeSimulation, cli, env_file_flags, log_flags, process_flags, ssh_target
from tests.fixtures_ssh import SSHServer
from tests.phase4 import ALL_OFF

ENVIRONMENT = """
[environments.staging]
kind = "staging"
api_url = "http://127.0.0.1:{api_port}"
channel_id = -100
login_email = "ops@example.com"
password = { env = "STAGING_PASSWORD" }
env_file = "{install_dir}/.env.staging"
restart_command = "sudo systemctl restart analyticbot-api"
pid_command = "systemctl show -p MainPID --value analyticbot-api"
log_file = "/var/log/analyticbot/staging.log"
"""

INI = """\
# the API fleet
[api]
web[01:03].example.com ansible_user=deploy
db-api ansible_host=10.0.0.5 ansible_port=2222 api_port=10399 ansible_ssh_private_key_file=keys/db_ed25519

[api:vars]
install_dir=/opt/analyticbot
api_port=10300
enabled=True
zones=["a", "b"]

[canary]
web01.example.com

[everything:children]
api
canary
"""


@pytest.fixture(autouse=True)
def ansible() -> None:
    if inventories.binary() is None:
        pytest.skip(f"needs ansible-core (ansible-inventory): {inventories.INSTALL}, or pip install -e '.[test]'")


def write_config(directory: Path, inventory: str, **table: object) -> Path:
    """The environment above, its hosts from ``inventory``: [environments.staging.inventory]
    starts on line 12, with file on 13, group on 14, then ``table`` in order."""
    settings = {"file": inventory, "group": "api", **table}
    inventory_table = tomli_w.dumps({"environments": {"staging": {"inventory": settings}}})
    path = directory / "console.toml"
    path.write_text(ENVIRONMENT.lstrip("\n") + "\n" + inventory_table, encoding="utf-8")
    return path


def validate(config: Path) -> tuple[int, list[str]]:
    result = subprocess.run(
        [sys.executable, "-m", "console", "config", "validate", str(config)],
        capture_output=True,
        text=True,
        timeout=120,
        stdin=subprocess.DEVNULL,
    )
    return result.returncode, (result.stdout + result.stderr).splitlines()


def test_ini_inventory_gives_the_groups_hosts_their_address_port_user_key_and_vars(tmp_path: Path) -> None:
    (tmp_path / "hosts.ini").write_text(INI, encoding="utf-8")
    config = write_config(
        tmp_path,
        "hosts.ini",
        user="ops",
        known_hosts="ssh/known_hosts",
        connect_timeout=7,
        vars={"install_dir": "/srv/default", "region": "eu"},
    )

    env = load_config(config).environment("staging")

    known = str(tmp_path / "ssh" / "known_hosts")
    common = {"known_hosts": known, "connect_timeout": 7.0}
    webs = [
        Host(
            name=f"web0{i}.example.com",
            address=f"web0{i}.example.com",  # no ansible_host: the inventory name is the address
            user="deploy",
            vars=(("install_dir", "/opt/analyticbot"), ("region", "eu"), ("api_port", "10300")),
            **common,
        )
        for i in (1, 2, 3)
    ]
    db = Host(
        name="db-api",
        address="10.0.0.5",
        port=2222,
        user="ops",  # the table's default: the inventory names no user for it
        key_file=str(tmp_path / "keys" / "db_ed25519"),  # relative to the inventory's directory
        vars=(("install_dir", "/opt/analyticbot"), ("region", "eu"), ("api_port", "10399")),
        **common,
    )
    # The group's order; host vars beat group vars beat the table's; a bool or a list is no placeholder.
    assert env.hosts == (*webs, db)
    assert env.inventory == (str(tmp_path / "hosts.ini"), "api")
    assert [env.expand(env.env_file, h) for h in env.hosts] == ["/opt/analyticbot/.env.staging"] * 4
    assert env.expand(env.api_url, env.hosts[3]) == "http://127.0.0.1:10399"

    code, out = validate(config)
    source = f"group api of the inventory {tmp_path / 'hosts.ini'}"
    assert code == 0 and out == [
        f"{config}: ok — staging (staging, 4 hosts from {source}); profile analyticbot-phase4.toml (the default)"
    ]


def test_groups_of_groups_yaml_and_group_vars_beside_the_inventory(tmp_path: Path) -> None:
    (tmp_path / "inventory.yml").write_text(
        "all:\n"
        "  children:\n"
        "    fleet:\n"
        "      children:\n"
        "        eu:\n"
        "          hosts:\n"
        "            eu-1: {ansible_ssh_host: 10.1.0.1, ansible_ssh_port: 2201}\n"  # the old spellings
        "            eu-2: {ansible_host: 10.1.0.2}\n"
        "        us:\n"
        "          hosts:\n"
        "            us-1: {ansible_host: 10.2.0.1, ansible_connection: ssh}\n"
        "            eu-1: {}\n",  # in two groups: once in the fleet
        encoding="utf-8",
    )
    (tmp_path / "group_vars").mkdir()
    (tmp_path / "group_vars" / "fleet.yml").write_text(
        "install_dir: /opt/api\napi_port: 10300\nansible_user: svc\n", encoding="utf-8"
    )
    config = write_config(tmp_path, "inventory.yml", group="fleet")

    env = load_config(config).environment("staging")

    assert [(h.name, h.address, h.port, h.user) for h in env.hosts] == [
        ("eu-1", "10.1.0.1", 2201, "svc"),
        ("eu-2", "10.1.0.2", 22, "svc"),
        ("us-1", "10.2.0.1", 22, "svc"),
    ]
    assert all(dict(h.vars) == {"install_dir": "/opt/api", "api_port": "10300"} for h in env.hosts)

    # The inventory is read again once it changed (a process may load its config twice).
    (tmp_path / "group_vars" / "fleet.yml").write_text(
        "install_dir: /opt/api2\napi_port: 10300\nansible_user: svc\n", encoding="utf-8"
    )
    again = load_config(config).environment("staging")
    assert {dict(h.vars)["install_dir"] for h in again.hosts} == {"/opt/api2"}


def test_inventory_problems_say_file_line_and_key(tmp_path: Path) -> None:
    (tmp_path / "hosts.ini").write_text(
        "[api]\n"
        "ok-1 ansible_host=10.0.0.1 install_dir=/opt/a api_port=1\n"
        'blank ansible_host="" install_dir=/opt/a api_port=1\n'
        "bad-port ansible_host=10.0.0.3 ansible_port=70000 install_dir=/opt/a api_port=1\n"
        "winbox ansible_host=10.0.0.4 ansible_connection=winrm install_dir=/opt/a api_port=1\n"
        "[db]\n"
        "db-1 ansible_host=10.0.1.1\n",
        encoding="utf-8",
    )
    config = write_config(tmp_path, "hosts.ini", port=99999, colour="blue")
    inventory = tmp_path / "hosts.ini"

    code, out = validate(config)

    assert code == 2
    assert out == [
        f"{config}:15: environments.staging.inventory.port: 99999 is not a TCP port",
        f"{config}:16: environments.staging.inventory.colour: unknown key",
        f"{inventory}:3: blank.ansible_host: the host has no address (ansible_host is '')",
        f"{inventory}:4: bad-port.ansible_port: 70000 is not a TCP port",
        f"{inventory}:5: winbox.ansible_connection: 'winrm': the console reaches hosts over ssh (or local)",
        f"{config}: 5 problem(s)",
    ]

    config = write_config(tmp_path, "hosts.ini", group="apis")
    code, out = validate(config)
    assert code == 2 and out[0] == (
        f"{config}:14: environments.staging.inventory.group: no group 'apis' in the inventory {inventory} "
        "(did you mean 'api'?); its groups: api, db"
    )

    # One host list per environment; one definition per host.
    text = write_config(tmp_path, "hosts.ini", group="db").read_text(encoding="utf-8")
    text = text.replace('kind = "staging"', 'kind = "staging"\nhosts = ["db-1"]')
    text += '\n[hosts.db-1]\naddress = "10.0.1.1"\n'
    config.write_text(text, encoding="utf-8")
    code, out = validate(config)
    assert code == 2
    assert f"{config}:3: environments.staging.hosts: give hosts or an inventory, not both" in out[0]
    assert out[1] == (
        f"{config}:17: hosts.db-1: host 'db-1' is in group db of the inventory {inventory} too: each host is "
        "defined once, in the inventory or in a [hosts] table"
    )


def test_an_inventory_that_cannot_be_read_is_a_problem_at_its_key(tmp_path: Path) -> None:
    os.mkfifo(tmp_path / "fifo.ini")
    (tmp_path / "dir.ini").mkdir()
    (tmp_path / "broken.ini").write_text("[api\nweb1\n", encoding="utf-8")
    (tmp_path / "empty.ini").write_text("[api]\n[db]\nx1\n", encoding="utf-8")
    cases = {
        "missing.ini": "cannot read inventory {path}: No such file or directory",
        "fifo.ini": "cannot read inventory {path}: is a named pipe (FIFO), not a regular file",
        "dir.ini": "cannot read inventory {path}: is a directory, not a regular file",
        "broken.ini": "Ansible cannot parse the inventory {path}: ",
    }
    for name, message in cases.items():
        config = write_config(tmp_path, name)
        code, out = validate(config)  # a FIFO must not block the validation
        assert code == 2, out
        assert out[0].startswith(
            f"{config}:13: environments.staging.inventory.file: " + message.format(path=tmp_path / name)
        ), out
    assert "Failed to parse" in out[0] and "\x1b" not in out[0]  # Ansible's own words, escaped

    config = write_config(tmp_path, "empty.ini")
    code, out = validate(config)
    assert code == 2 and out[0] == (
        f"{config}:14: environments.staging.inventory.group: group 'api' of the inventory "
        f"{tmp_path / 'empty.ini'} has no hosts"
    )


def test_without_ansible_core_the_problem_says_what_to_install(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "hosts.ini").write_text(INI, encoding="utf-8")
    config = write_config(tmp_path, "hosts.ini")
    # No ansible-inventory beside the interpreter, none on PATH: as on a machine without the extra.
    monkeypatch.setattr(sys, "executable", str(tmp_path / "bin" / "python"))
    monkeypatch.setenv("PATH", str(tmp_path / "bin"))

    with pytest.raises(ConfigError) as err:
        load_config(config)

    (problem,) = err.value.problems
    assert (problem.file, problem.line, problem.key) == (str(config), 13, "environments.staging.inventory.file")
    assert problem.message == (
        f"reading the Ansible inventory {tmp_path / 'hosts.ini'} needs ansible-inventory (ansible-core), "
        f"which is not installed here: {inventories.INSTALL}"
    )


@pytest.mark.ssh
def test_a_fleet_from_an_inventory_over_ssh_status_and_quick_rollback(
    make_simulation: MakeSimulation, sshd: SSHServer, tmp_path: Path
) -> None:
    """Three simulated hosts behind the loopback sshd, named only in an INI inventory
    (address, port, user and key from it; each host's home and API port as host vars):
    `status` reaches all three, and a quick rollback turns the flags off on every one."""
    sim = make_simulation(ssh=ssh_target(sshd), hosts=3)
    hosts = sim.hosts("staging")
    lines = ["[analyticbot_api]"]
    lines += [f"{h.name} ansible_host={sshd.address} home={h.home} api_port={h.api_port}" for h in hosts]
    lines += [
        "",
        "[analyticbot_api:vars]",
        f"ansible_port={sshd.port}",
        f"ansible_user={sshd.user}",
        f"ansible_ssh_private_key_file={sshd.key_file}",
    ]
    (tmp_path / "inventory.ini").write_text("\n".join(lines) + "\n", encoding="utf-8")
    data = tomllib.loads(sim.config_path.read_text(encoding="utf-8"))
    del data["hosts"]
    env = data["environments"]["staging"]
    del env["hosts"]
    env["inventory"] = {"file": "inventory.ini", "group": "analyticbot_api", "known_hosts": sshd.known_hosts}
    data["console"]["journal"] = str(tmp_path / "journal.jsonl")
    config = tmp_path / "console.toml"
    config.write_text(tomli_w.dumps(data), encoding="utf-8")

    status = cli(config, "status", "staging", "--json")

    assert status.returncode == 0, status.stdout + status.stderr
    (snapshot,) = json.loads(status.stdout)["environments"]
    assert [h["host"] for h in snapshot["hosts"]] == [h.name for h in hosts]
    assert all(h["where"] == f"ssh {sshd.user}@{sshd.address}:{sshd.port}" for h in snapshot["hosts"])

    rollback = cli(config, "rollback", "quick", "--env", "staging", "--yes", "--json")

    assert rollback.returncode == 0, rollback.stdout[-3000:] + rollback.stderr[-3000:]
    doc = json.loads(rollback.stdout)
    assert doc["outcome"] == "succeeded" and sorted(doc["hosts"]) == sorted(h.name for h in hosts)
    for host in hosts:
        assert env_file_flags(host) == ALL_OFF and process_flags(host) == ALL_OFF and log_flags(host) == ALL_OFF
