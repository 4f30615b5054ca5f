from __future__ import annotations

import copy
import os
import socket
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

ROOT = Path(__file__).resolve().parent.parent
EXAMPLES = ROOT / "examples"
CHORDOMA = EXAMPLES / "chordoma-gluteal-mass.yaml"


# The tests keep their caches (the knowledge base's, the polish answers') out of the user's home, in one
# folder for the session that the tests' subprocesses inherit; a test that needs its own sets its own.
_CACHE = tempfile.TemporaryDirectory(prefix="lettergen-test-cache-")
os.environ["LETTERGEN_CACHE_DIR"] = _CACHE.name
# ...and the redaction key lettergen makes on first use (lettergen.provenance.redact), which lives in the config folder.
_CONFIG = tempfile.TemporaryDirectory(prefix="lettergen-test-config-")
os.environ["XDG_CONFIG_HOME"] = _CONFIG.name
for _var in ("LETTERGEN_REDACT_KEY", "LETTERGEN_REDACT_SALT"):
    os.environ.pop(_var, None)
# ...and the NCCI database (lettergen kb import-ncci) of the data folder: none, unless a test imports its own.
_DATA = tempfile.TemporaryDirectory(prefix="lettergen-test-data-")
os.environ["XDG_DATA_HOME"] = _DATA.name
os.environ.pop("LETTERGEN_NCCI_DB", None)

_REAL_CONNECT = socket.socket.connect


def _guarded_connect(self: socket.socket, address: object) -> object:
    host = address[0] if isinstance(address, tuple) else address
    if (isinstance(host, str) and (host.startswith("127.") or host in ("localhost", "::1"))) or (
        self.family == socket.AF_UNIX
    ):
        return _REAL_CONNECT(self, address)  # type: ignore[arg-type]
    raise RuntimeError(f"test tried to reach the network: {address!r}")


# Tests never reach the network, from collection on (an import at collection time is guarded too): any
# connection beyond loopback fails loudly. Set here, once, for the whole session.
socket.socket.connect = _guarded_connect  # type: ignore[method-assign]


@pytest.fixture(autouse=True)
def no_network() -> Iterator[None]:
    """Every test runs with the guard in place (a test that swapped it out gets it back)."""
    socket.socket.connect = _guarded_connect  # type: ignore[method-assign]
    yield


@pytest.fixture
def runner() -> CliRunner:
    return CliRunner()


def set_path(data: Any, path: tuple[Any, ...], value: Any = None, delete: bool = False) -> Any:
    """A deep copy of ``data`` with the value at ``path`` replaced (or deleted)."""
    data = copy.deepcopy(data)
    node: Any = data
    for k in path[:-1]:
        node = node[k]
    if delete:
        del node[path[-1]]
    else:
        node[path[-1]] = value
    return data


def run_cli(*args: str) -> tuple[int, str, str]:
    """Run the CLI in-process; returns (exit code, stdout, stderr). As ``lettergen`` itself does, only the
    command named is built (lettergen.interfaces.startup.app_for)."""
    from lettergen.interfaces.cli import app
    from lettergen.interfaces.startup import app_for

    result = CliRunner().invoke(app_for(app, ["lettergen", *args]), list(args), catch_exceptions=False)
    return result.exit_code, result.stdout, result.stderr


# CI must be deterministic: hypothesis explores the same examples every run. Set HYPOTHESIS_PROFILE=explore
# locally to search new ones.
from hypothesis import settings as _hyp_settings  # noqa: E402

_hyp_settings.register_profile("ci", derandomize=True, deadline=None, database=None)
_hyp_settings.register_profile("explore", deadline=None)
_hyp_settings.load_profile(__import__("os").environ.get("HYPOTHESIS_PROFILE", "ci"))
