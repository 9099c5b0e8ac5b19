"""What a server loads: importing it loads no follower, controller or store.

Each test runs in a fresh interpreter, so what it reports of `sys.modules` is the server's own
doing, not what the test process imported before it.
"""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

pytestmark = [pytest.mark.timeout(120)]


def _run(script: str, *args: str) -> dict[str, object]:
    done = subprocess.run([sys.executable, "-c", script, *args], capture_output=True,
                          text=True, timeout=90, check=False)
    assert done.returncode == 0, done.stderr
    result: dict[str, object] = json.loads(done.stdout.strip().splitlines()[-1])
    return result


IMPORT_CHILD = r"""
import json, sys
import tallinn.serve
imported = {"serve": sorted(m for m in sys.modules
                            if m.split(".")[0] == "sqlalchemy" or m in WATCHED)}
tallinn.serve.ChannelFollower, tallinn.serve.ControllerStatus
imported["used"] = [m for m in WATCHED if m in sys.modules]
print(json.dumps(imported))
""".replace("WATCHED", repr(("tallinn.serve._follow", "tallinn.serve._control",
                             "tallinn.serve._dashboard", "tallinn.ops.store")))


def test_importing_the_server_loads_no_follower_controller_or_store() -> None:
    """`import tallinn.serve` loads neither the follower, the controller, the dashboard nor the
    store; its names for them still resolve, loading their modules when first used."""
    seen = _run(IMPORT_CHILD)
    assert seen["serve"] == []
    assert seen["used"] == ["tallinn.serve._follow", "tallinn.serve._control",
                            "tallinn.ops.store"]
