"""pytest-jupyter's real in-process Jupyter Server, for the tests in this directory only (its fixtures
include autouse ones that would otherwise run around every test of the suite)."""

from __future__ import annotations

import os

import pytest
from pg_server import TEST_URL_ENV, pg_bindir, pg_server
from pytest_jupyter.jupyter_core import *  # noqa: F403
from pytest_jupyter.jupyter_server import *  # noqa: F403
from traitlets.config import Config


@pytest.fixture
def jp_server_config():
    return Config({"ServerApp": {"jpserver_extensions": {"playbook_nb.faces.server": True}}})


@pytest.fixture(scope="module")
def pg():
    """A PostgreSQL server of this module's own, stopped when the module ends. (The session's server from
    tests/conftest.py, when started this early in the suite, was found dead by test_store_backends.)"""
    if not os.environ.get(TEST_URL_ENV) and pg_bindir() is None:
        if os.environ.get("CI"):
            pytest.fail("CI is set but PostgreSQL server binaries are not found")
        pytest.skip("PostgreSQL server binaries not found")
    with pg_server() as server:
        yield server
