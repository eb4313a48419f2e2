"""pytest-jupyter's real in-process Jupyter Server, for the tests in this directory only (its fixtures
include autouse ones that would otherwise run around every test of the suite)."""

from __future__ import annotations

import pytest
from pytest_jupyter.jupyter_core import *  # noqa: F403
from pytest_jupyter.jupyter_server import *  # noqa: F403
from traitlets.config import Config


@pytest.fixture
def jp_server_config():
    return Config({"ServerApp": {"jpserver_extensions": {"playbook_nb.faces.server": True}}})
