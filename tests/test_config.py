"""Configuration discovery, precedence, environment overlay and overrides, on real files."""

from __future__ import annotations

import tomllib
from pathlib import Path

import pytest

from playbook_nb.app.config import (
    Config,
    ConfigError,
    init_path,
    load_config,
    render_template,
    validate_config,
)


@pytest.fixture
def dirs(tmp_path):
    """A project dir, a user config dir and a system config dir, all empty."""
    project, user, system = tmp_path / "project", tmp_path / "user", tmp_path / "system"
    for d in (project, user, system):
        d.mkdir()
    return project, user, system


def load(dirs, env=None) -> Config:
    project, user, system = dirs
    return load_config(cwd=project, env=env or {}, user_dir=user, system_dir=system)


def write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return path


def test_defaults_without_any_file(dirs):
    config = load(dirs)
    assert config.files == ()
    assert config.database.path is None and config.database.timeout == 30.0
    assert config.execution.max_retries == 3 and config.execution.parallel is False
    assert config.logging.level == "INFO" and config.logging.file_path is None
    assert config.ui.color_theme == "auto"
    assert all(source == "default" for _, _, source in config.items())


def test_local_beats_user_beats_system_key_by_key(dirs):
    project, user, system = dirs
    s = write(
        system / "config.toml", "[execution]\nmax_retries = 1\nparallel = true\n[database]\ntimeout = 10\n"
    )
    u = write(user / "config.toml", "[execution]\nmax_retries = 2\n[database]\ntimeout = 20\n")
    p = write(project / "playbook.toml", "[execution]\nmax_retries = 5\n")
    config = load(dirs)
    assert config.files == (s, u, p)
    assert (config.execution.max_retries, config.database.timeout, config.execution.parallel) == (
        5,
        20.0,
        True,
    )
    assert config.sources["execution.max_retries"] == str(p)
    assert config.sources["database.timeout"] == str(u)
    assert config.sources["execution.parallel"] == str(s)
    assert config.sources.get("logging.level", "default") == "default"


def test_playbook_config_replaces_discovery(dirs, tmp_path):
    project, user, _ = dirs
    write(project / "playbook.toml", "[execution]\nmax_retries = 5\n")
    write(user / "config.toml", "[logging]\nlevel = 'DEBUG'\n")
    explicit = write(tmp_path / "elsewhere" / "custom.toml", "[execution]\nmax_retries = 9\n")
    config = load(dirs, {"PLAYBOOK_CONFIG": str(explicit)})
    assert config.files == (explicit,)
    assert config.execution.max_retries == 9 and config.logging.level == "INFO"
    with pytest.raises(ConfigError, match="named by PLAYBOOK_CONFIG does not exist"):
        load(dirs, {"PLAYBOOK_CONFIG": str(tmp_path / "missing.toml")})


def test_playbook_env_reads_the_overlay_beside_each_file(dirs, tmp_path):
    project, user, _ = dirs
    write(user / "config.toml", "[logging]\nlevel = 'INFO'\n[execution]\nmax_retries = 2\n")
    overlay = write(
        user / "config.production.toml", "[logging]\nlevel = 'WARNING'\n[execution]\nmax_retries = 4\n"
    )
    local = write(project / "playbook.toml", "[execution]\nmax_retries = 6\n")
    write(user / "config.staging.toml", "[logging]\nlevel = 'DEBUG'\n")

    config = load(dirs, {"PLAYBOOK_ENV": "production"})
    assert config.environment == "production"
    assert config.logging.level == "WARNING" and config.sources["logging.level"] == str(overlay)
    assert config.execution.max_retries == 6 and config.sources["execution.max_retries"] == str(local)
    assert load(dirs).logging.level == "INFO"

    explicit = write(tmp_path / "c" / "custom.toml", "[ui]\nprogress_style = 'spinner'\n")
    write(tmp_path / "c" / "custom.production.toml", "[ui]\nprogress_style = 'none'\n")
    config = load(dirs, {"PLAYBOOK_CONFIG": str(explicit), "PLAYBOOK_ENV": "production"})
    assert config.ui.progress_style == "none"

    with pytest.raises(ConfigError, match="PLAYBOOK_ENV: invalid environment name"):
        load(dirs, {"PLAYBOOK_ENV": "../etc"})


def test_environment_variables_override_files(dirs):
    project, _, _ = dirs
    write(project / "playbook.toml", "[database]\npath = 'a.db'\n[execution]\nmax_retries = 5\n")
    env = {"PLAYBOOK_DB_PATH": "/srv/runs.db", "PLAYBOOK_MAX_RETRIES": "7", "PLAYBOOK_LOG_LEVEL": "debug"}
    config = load(dirs, env)
    assert config.database.path == Path("/srv/runs.db")
    assert config.execution.max_retries == 7
    assert config.logging.level == "DEBUG"
    assert config.sources["database.path"] == "env PLAYBOOK_DB_PATH"
    assert config.sources["execution.max_retries"] == "env PLAYBOOK_MAX_RETRIES"
    assert config.sources["logging.level"] == "env PLAYBOOK_LOG_LEVEL"


@pytest.mark.parametrize(
    ("var", "value", "message"),
    [
        ("PLAYBOOK_MAX_RETRIES", "many", "PLAYBOOK_MAX_RETRIES: expected an integer"),
        ("PLAYBOOK_MAX_RETRIES", "-1", "must be at least 0"),
        ("PLAYBOOK_LOG_LEVEL", "LOUD", "PLAYBOOK_LOG_LEVEL: expected one of DEBUG, INFO"),
    ],
)
def test_bad_environment_override_is_one_line_error(dirs, var, value, message):
    with pytest.raises(ConfigError, match=message) as info:
        load(dirs, {var: value})
    assert "\n" not in str(info.value)


def test_bad_values_name_the_file_and_key(dirs):
    project, _, _ = dirs
    path = write(project / "playbook.toml", "[execution]\nmax_retries = 'three'\n[database]\ntimeout = 0\n")
    with pytest.raises(ConfigError) as info:
        load(dirs)
    assert str(info.value) == (
        f"{path}: execution.max_retries: expected an integer, got 'three' (and 1 more problems)"
    )
    _, problems = validate_config(cwd=project, env={}, user_dir=dirs[1], system_dir=dirs[2])
    assert problems == [
        f"{path}: execution.max_retries: expected an integer, got 'three'",
        f"{path}: database.timeout: must be greater than 0, got 0",
    ]


def test_invalid_toml_is_reported(dirs):
    project, _, _ = dirs
    path = write(project / "playbook.toml", "[execution\nmax_retries = 3\n")
    with pytest.raises(ConfigError, match=f"{path}: invalid TOML"):
        load(dirs)


def test_unknown_keys_warn_on_load_and_fail_validation(dirs):
    project, user, system = dirs
    write(project / "playbook.toml", "[execution]\nmax_retry = 3\n[colours]\nx = 1\n")
    config = load(dirs)
    assert config.execution.max_retries == 3
    assert len(config.warnings) == 2 and "unknown key execution.max_retry" in config.warnings[0]
    _, problems = validate_config(cwd=project, env={}, user_dir=user, system_dir=system)
    assert any("unknown section 'colours'" in p for p in problems)


def test_seed_default_timeout_is_not_a_key_it_did_nothing(dirs):
    # issue 19.2: the seed's `[execution] default_timeout` was validated and then ignored (a node's own
    # `timeout`, default 300 s, is what applies); it is no longer in the schema, so it warns like any typo
    project, _, _ = dirs
    write(project / "playbook.toml", "[execution]\ndefault_timeout = 10\n")
    config = load(dirs)
    assert len(config.warnings) == 1 and "unknown key execution.default_timeout" in config.warnings[0]
    assert not hasattr(config.execution, "default_timeout")


def test_paths_are_relative_to_their_file_and_seed_spellings_work(dirs):
    _, user, _ = dirs
    write(
        user / "config.toml",
        "[database]\npath = 'state/runs.db'\n[logging]\nfile_path = ''\n"
        "[execution]\nparallel_execution = true\n",
    )
    config = load(dirs)
    assert config.database.path == user / "state" / "runs.db"
    assert config.logging.file_path is None
    assert config.execution.parallel is True


def test_template_is_valid_toml_with_the_defaults(dirs):
    project, _, _ = dirs
    text = render_template()
    assert set(tomllib.loads(text)) == {"database", "artifacts", "execution", "runs", "logging", "ui"}
    write(project / "playbook.toml", text)
    from_template = load(dirs)
    defaults = load_config(cwd=project / "nowhere", env={}, user_dir=dirs[1], system_dir=dirs[2])
    assert [v for _, v, _ in from_template.items()] == [v for _, v, _ in defaults.items()]


def test_init_overlay_sets_only_what_its_environment_changes(dirs):
    _, user, _ = dirs
    assert init_path("testing", user) == user / "config.testing.toml"
    data = tomllib.loads(render_template("testing"))
    assert {section: keys for section, keys in data.items() if keys} == {
        "execution": {"max_retries": 0},
        "ui": {"color_theme": "none"},
    }
    with pytest.raises(ConfigError, match="invalid environment name"):
        init_path("a/b", user)
