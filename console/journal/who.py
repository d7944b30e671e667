"""Who did it: the OS user, where they came from over SSH, the bastion host, the process."""

from __future__ import annotations

import os
import pwd
import socket
from dataclasses import asdict, dataclass
from typing import Any


@dataclass(frozen=True)
class Who:
    user: str
    ssh_client: str | None
    host: str
    pid: int

    @classmethod
    def current(cls) -> Who:
        """This process. The user comes from the password database, not from $USER,
        which anyone can set to anything."""
        uid = os.getuid()
        try:
            user = pwd.getpwuid(uid).pw_name
        except KeyError:  # a uid with no passwd entry (containers): still say who
            user = f"uid {uid}"
        return cls(user=user, ssh_client=ssh_client(), host=socket.gethostname(), pid=os.getpid())

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any] | None) -> Who | None:
        if not isinstance(data, dict):
            return None
        pid = data.get("pid")
        return cls(
            user=str(data.get("user") or "?"),
            ssh_client=data.get("ssh_client"),
            host=str(data.get("host") or "?"),
            pid=pid if isinstance(pid, int) else -1,
        )

    def describe(self) -> str:
        where = f" from {self.ssh_client}" if self.ssh_client else ""
        return f"{self.user}{where} on {self.host}"


def ssh_client() -> str | None:
    """The client address of this SSH session: first field of $SSH_CLIENT or $SSH_CONNECTION."""
    for name in ("SSH_CLIENT", "SSH_CONNECTION"):
        fields = os.environ.get(name, "").split()
        if fields:
            return fields[0]
    return None
