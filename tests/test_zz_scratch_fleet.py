import json
from pathlib import Path
import pytest
from tests.test_fleet import fleet, fleet_config, reset, FLEET_SIZE, QUICK  # noqa: F401
from tests.engine_support import cli
pytestmark = pytest.mark.ssh

def test_scratch(fleet, tmp_path: Path) -> None:
    hosts = fleet.hosts("staging")
    for i in range(2):
        reset(fleet, hosts)
        config = fleet_config(fleet, tmp_path / str(i), FLEET_SIZE) if (tmp_path / str(i)).mkdir() is None else None
        r = cli(config, *QUICK)
        doc = json.loads(r.stdout)
        print("EXIT", r.returncode, doc.get("outcome"))
        print("ENVSTEPS", json.dumps(doc.get("environment_steps"))[:3000])
        print("STDERR", r.stderr[-5000:])
