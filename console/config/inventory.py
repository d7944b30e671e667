"""Hosts from an Ansible inventory (INI or YAML), read through ``ansible-inventory --list``.

Ansible's own parser reads the file — host ranges (``web[01:50]``), groups of groups,
``[group:vars]``, ``group_vars/`` and ``host_vars/`` beside it — so the console sees the
fleet exactly as Ansible does. ansible-core is an optional extra
(``pip install 'rollback-console[inventory]'``); without it a config that names an
inventory says what to install.

Only the ``ini`` and ``yaml`` inventory plugins are enabled: an executable file is not run
as an inventory script, and an inventory Ansible cannot parse is an error, not an empty fleet.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from console import files, safe_text

INSTALL = "pip install 'rollback-console[inventory]'  (or: pip install 'ansible-core>=2.19,<2.20')"
TIMEOUT_S = 60.0
MAX_OUTPUT = 64 * 1024 * 1024
# The per-host variables that say how to reach a host; every other variable of the host
# (string or integer, with a placeholder's name) is a var for {placeholders}.
CONNECTION_VARS = ("ansible_host", "ansible_port", "ansible_user", "ansible_ssh_private_key_file", "ansible_connection")
# Older spellings Ansible still honours, after the current ones.
ALIASES = {
    "ansible_host": ("ansible_host", "ansible_ssh_host"),
    "ansible_port": ("ansible_port", "ansible_ssh_port"),
    "ansible_user": ("ansible_user", "ansible_ssh_user"),
    "ansible_ssh_private_key_file": ("ansible_ssh_private_key_file", "ansible_private_key_file"),
}
_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*\Z")


class InventoryError(Exception):
    """The inventory could not be read; the message says which file and why."""


@dataclass(frozen=True)
class Inventory:
    path: str
    groups: dict[str, dict[str, list[str]]]  # group → {"hosts": [...], "children": [...]}
    hostvars: dict[str, dict[str, Any]]

    def group_hosts(self, group: str) -> list[str] | None:
        """The group's hosts, its children's included, in inventory order; None: no such group."""
        if group not in self.groups:
            return None
        out: dict[str, None] = {}
        seen: set[str] = set()

        def walk(name: str) -> None:
            if name in seen:  # Ansible refuses cycles; be safe anyway
                return
            seen.add(name)
            entry = self.groups.get(name, {})
            out.update(dict.fromkeys(entry.get("hosts", [])))
            for child in entry.get("children", []):
                walk(child)

        walk(group)
        return list(out)


def binary() -> str | None:
    """``ansible-inventory`` beside this Python (a venv), else on PATH."""
    here = Path(sys.executable).parent / "ansible-inventory"
    return str(here) if os.access(here, os.X_OK) else shutil.which("ansible-inventory")


_cache: dict[tuple[str, tuple[Any, ...]], Inventory] = {}


def read(path: str) -> Inventory:
    """The inventory at ``path`` as Ansible reads it; InventoryError saying why not.

    Remembered for this process while the file and its group_vars/host_vars are unchanged
    (a config is loaded more than once; ansible-inventory takes about a second)."""
    try:
        st = os.stat(path)
    except OSError as exc:
        raise InventoryError(f"cannot read inventory {path}: {exc.strerror or exc}") from None
    problem = files.not_regular(path, st.st_mode)
    if problem:
        raise InventoryError(f"cannot read inventory {path}: {problem.reason.lstrip(': ')}")
    if not os.access(path, os.R_OK):
        raise InventoryError(f"cannot read inventory {path}: permission denied")
    key = (os.path.abspath(path), _signature(path, st))
    if key not in _cache:
        _cache[key] = _run(path)
    return _cache[key]


def _signature(path: str, st: os.stat_result) -> tuple[Any, ...]:
    """What a change of the inventory shows in: the file, and group_vars/ and host_vars/ beside it."""
    parts: list[Any] = [st.st_mtime_ns, st.st_size, st.st_ino]
    base = os.path.dirname(os.path.abspath(path))
    for sub in ("group_vars", "host_vars"):
        for root, dirs, names in os.walk(os.path.join(base, sub)):
            dirs.sort()
            for name in sorted(names):
                try:
                    s = os.stat(os.path.join(root, name))
                except OSError:
                    continue
                parts.append((root, name, s.st_mtime_ns, s.st_size))
    return tuple(parts)


def _run(path: str) -> Inventory:
    command = binary()
    if command is None:
        raise InventoryError(
            f"reading the Ansible inventory {path} needs ansible-inventory (ansible-core), which is not "
            f"installed here: {INSTALL}"
        )
    env = {
        **os.environ,
        "ANSIBLE_INVENTORY_ENABLED": "ini,yaml",  # no inventory scripts, no cloud plugins
        "ANSIBLE_INVENTORY_UNPARSED_FAILED": "True",  # an unparsable file is an error, not an empty fleet
        "ANSIBLE_LOCAL_TEMP": tempfile.gettempdir(),  # the operator's home may be read-only (watch)
        "ANSIBLE_NOCOLOR": "True",
        "ANSIBLE_DEPRECATION_WARNINGS": "False",
    }
    try:
        # From the inventory's directory, as `ansible` is usually run: its ansible.cfg applies.
        result = subprocess.run(
            [command, "-i", os.path.abspath(path), "--list"],
            capture_output=True,
            stdin=subprocess.DEVNULL,
            timeout=TIMEOUT_S,
            cwd=os.path.dirname(os.path.abspath(path)),
            env=env,
            check=False,
        )
    except subprocess.TimeoutExpired:
        raise InventoryError(f"ansible-inventory did not read {path} within {TIMEOUT_S:g}s") from None
    except OSError as exc:
        raise InventoryError(f"cannot run {command} for {path}: {exc.strerror or exc}") from None
    if result.returncode != 0:
        raise InventoryError(f"Ansible cannot parse the inventory {path}: {_why(result.stderr)}")
    if len(result.stdout) > MAX_OUTPUT:
        raise InventoryError(f"the inventory {path} is larger than {MAX_OUTPUT // (1024 * 1024)} MB as JSON")
    try:
        data = json.loads(result.stdout)
    except ValueError as exc:
        raise InventoryError(f"ansible-inventory gave no JSON for {path} ({exc})") from None
    return _parse(path, data)


def _why(stderr: bytes) -> str:
    """ansible-inventory's own words: its errors and failed-parse warnings, on one line."""
    text = stderr.decode("utf-8", "replace")
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    wanted = [line for line in lines if line.startswith(("[ERROR]", "[WARNING]: Failed", "Origin:"))] or lines[-3:]
    seen: dict[str, None] = dict.fromkeys(wanted)
    return safe_text.one_line(" ".join(seen))[:800] or "it failed without saying why"


def _parse(path: str, data: Any) -> Inventory:
    if not isinstance(data, dict):
        raise InventoryError(f"ansible-inventory gave no inventory for {path}")
    meta = data.get("_meta") if isinstance(data.get("_meta"), dict) else {}
    hostvars = meta.get("hostvars") if isinstance(meta.get("hostvars"), dict) else {}
    groups: dict[str, dict[str, list[str]]] = {}
    for name, entry in data.items():
        if name == "_meta" or not isinstance(entry, dict):
            continue
        groups[name] = {
            "hosts": [h for h in entry.get("hosts", []) if isinstance(h, str)],
            "children": [c for c in entry.get("children", []) if isinstance(c, str)],
        }
    for entry in list(groups.values()):  # groups named as children only (empty ones, e.g. "ungrouped")
        for child in entry["children"]:
            groups.setdefault(child, {"hosts": [], "children": []})
    return Inventory(path, groups, {k: v for k, v in hostvars.items() if isinstance(v, dict)})


def host_line(path: str, host: str) -> int | None:
    """The first line of the inventory file that names ``host`` (None: only a range names it)."""
    try:
        text = files.read_file(path, max_bytes=16 * 1024 * 1024).decode("utf-8", "replace")
    except OSError:
        return None
    pattern = re.compile(rf"(?<![\w.-]){re.escape(host)}(?![\w.-])")
    for number, line in enumerate(text.split("\n"), start=1):
        if pattern.search(line.split("#", 1)[0]):
            return number
    return None


@dataclass(frozen=True)
class Defaults:
    """What ``[environments.X.inventory]`` gives every host of its group, where the
    inventory says nothing (the inventory's own ansible_* variables win)."""

    user: str | None = None
    port: int | None = None
    key_file: str | None = None
    known_hosts: str | None = None
    connect_timeout: float = 10.0
    vars: tuple[tuple[str, str], ...] = ()


def connection(
    name: str, hostvars: dict[str, Any], defaults: Defaults, base: str
) -> tuple[dict[str, Any], list[tuple[str, str]]]:
    """One inventory host's settings for a config Host (keyword arguments), and its problems
    as (variable, message). ``base``: the inventory's directory (relative key paths)."""
    problems: list[tuple[str, str]] = []
    out: dict[str, Any] = {"name": name}
    hostvars = dict(hostvars)
    for var, spellings in ALIASES.items():
        found = next((s for s in spellings if s in hostvars), None)
        if found is not None:
            hostvars[var] = hostvars[found]
    kind = hostvars.get("ansible_connection", "ssh")
    if kind == "local":
        out["address"] = "local"
    elif kind not in ("ssh", "paramiko", "smart"):
        problems.append(("ansible_connection", f"{_shown(kind)}: the console reaches hosts over ssh (or local)"))
    else:
        address = hostvars.get("ansible_host", name)
        if not isinstance(address, str) or not address.strip():
            problems.append(("ansible_host", f"the host has no address (ansible_host is {_shown(address)})"))
        elif address == "local":
            problems.append(("ansible_host", '"local" is not an address: use ansible_connection=local'))
        else:
            out["address"] = address.strip()
    port = hostvars.get("ansible_port", defaults.port or 22)
    if isinstance(port, str) and port.strip().isdigit():
        port = int(port)
    if isinstance(port, bool) or not isinstance(port, int) or not 0 < port < 65536:
        problems.append(("ansible_port", f"{_shown(port)} is not a TCP port"))
    else:
        out["port"] = port
    user = hostvars.get("ansible_user", defaults.user)
    if user is not None and (not isinstance(user, str) or not user.strip()):
        problems.append(("ansible_user", f"expected a user name, got {_shown(user)}"))
    else:
        out["user"] = user
    key = hostvars.get("ansible_ssh_private_key_file")
    if key is not None and (not isinstance(key, str) or not key.strip()):
        problems.append(("ansible_ssh_private_key_file", f"expected a path, got {_shown(key)}"))
        key = None
    if isinstance(key, str):
        expanded = os.path.expanduser(os.path.expandvars(key))
        key = expanded if os.path.isabs(expanded) else os.path.normpath(os.path.join(base, expanded))
    out["key_file"] = key or defaults.key_file
    out["known_hosts"] = defaults.known_hosts
    out["connect_timeout"] = defaults.connect_timeout
    values = dict(defaults.vars)
    for var, value in hostvars.items():
        if var.startswith("ansible_") or not _NAME.match(var):
            continue
        if isinstance(value, str) or (isinstance(value, int) and not isinstance(value, bool)):
            values[var] = str(value)
    out["vars"] = tuple(values.items())
    return out, problems


def _shown(value: Any) -> str:
    text = safe_text.one_line(repr(value))
    return text if len(text) <= 60 else text[:57] + "…"
