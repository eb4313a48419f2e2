"""`playbook-nb config` through the real CLI (python -m playbook_nb), in an isolated home."""

from __future__ import annotations

import json
import tomllib

import pytest
from conftest import run_cli


@pytest.fixture
def home(tmp_path):
    """Config and data dirs of a fresh user, a project dir as cwd, and no PLAYBOOK_* settings."""
    project = tmp_path / "project"
    project.mkdir()
    env = {
        "XDG_CONFIG_HOME": str(tmp_path / "xdg-config"),
        "XDG_DATA_HOME": str(tmp_path / "xdg-data"),
        "PLAYBOOK_CONFIG": "",
        "PLAYBOOK_ENV": "",
        "PLAYBOOK_DB_PATH": "",
        "PLAYBOOK_MAX_RETRIES": "",
        "PLAYBOOK_LOG_LEVEL": "",
    }
    return tmp_path, project, env


def config_cli(home, *args, **extra_env):
    _, project, env = home
    return run_cli("config", *args, env={**env, **extra_env}, cwd=project)


def test_show_lists_values_and_sources(home):
    tmp_path, project, _ = home
    (project / "playbook.toml").write_text("[database]\ntimeout = 60\n")
    result = config_cli(home, "--show", PLAYBOOK_MAX_RETRIES="7")
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert any(line.split()[:3] == ["execution.max_retries", "7", "env"] for line in lines)
    assert any(
        line.split()[:3] == ["database.timeout", "60.0", str(project / "playbook.toml")] for line in lines
    )
    assert f"run index: {tmp_path / 'xdg-data' / 'playbook-nb' / 'runs.db'}" in result.stdout


def test_show_json(home):
    _, project, _ = home
    result = config_cli(home, "--show", "--json", PLAYBOOK_DB_PATH="/srv/pb/runs.db")
    assert result.returncode == 0, result.stderr
    data = json.loads(result.stdout)
    assert data["db_path"] == "/srv/pb/runs.db"
    assert data["settings"]["database.path"] == {"value": "/srv/pb/runs.db", "source": "env PLAYBOOK_DB_PATH"}
    assert data["settings"]["logging.level"] == {"value": "INFO", "source": "default"}


def test_validate_ok_and_invalid(home):
    _, project, _ = home
    ok = config_cli(home, "--validate")
    assert ok.returncode == 0 and "configuration valid" in ok.stdout

    (project / "playbook.toml").write_text("[execution]\nmax_retries = 'x'\n[colours]\na = 1\n")
    bad = config_cli(home, "--validate")
    assert bad.returncode == 2
    assert "Traceback" not in bad.stderr
    assert f"error: {project / 'playbook.toml'}: execution.max_retries: expected an integer" in bad.stderr
    assert "unknown section 'colours'" in bad.stderr


def test_invalid_environment_override_fails_show_in_one_line(home):
    result = config_cli(home, "--show", PLAYBOOK_LOG_LEVEL="LOUD")
    assert result.returncode == 2
    assert result.stderr.strip().splitlines() == [
        "error: environment variable PLAYBOOK_LOG_LEVEL: expected one of DEBUG, INFO, WARNING, ERROR, "
        "CRITICAL, got 'LOUD'"
    ]


def test_init_writes_the_environment_file_used_with_playbook_env(home):
    tmp_path, _, _ = home
    target = tmp_path / "xdg-config" / "playbook-nb" / "config.testing.toml"
    result = config_cli(home, "--init", "testing")
    assert result.returncode == 0, result.stderr
    assert str(target) in result.stdout
    assert tomllib.loads(target.read_text())["execution"]["max_retries"] == 0

    shown = json.loads(config_cli(home, "--show", "--json", PLAYBOOK_ENV="testing").stdout)
    assert shown["environment"] == "testing"
    assert shown["settings"]["execution.max_retries"] == {"value": 0, "source": str(target)}
    assert (
        json.loads(config_cli(home, "--show", "--json").stdout)["settings"]["execution.max_retries"]["value"]
        == 3
    )

    again = config_cli(home, "--init", "testing")
    assert again.returncode == 2 and "already exists; use --force" in again.stderr
    assert config_cli(home, "--init", "testing", "--force").returncode == 0


def test_template_writes_a_loadable_file(home):
    tmp_path, _, _ = home
    target = tmp_path / "template.toml"
    result = config_cli(home, "--template", str(target))
    assert result.returncode == 0, result.stderr
    assert tomllib.loads(target.read_text())["execution"]["max_retries"] == 3
    assert config_cli(home, "--validate", PLAYBOOK_CONFIG=str(target)).returncode == 0
    assert config_cli(home, "--template", str(target)).returncode == 2


def test_one_action_at_a_time(home):
    result = config_cli(home, "--show", "--validate")
    assert result.returncode == 2 and "one of --show, --init, --validate, --template" in result.stderr
