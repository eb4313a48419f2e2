"""Configuration: seed-compatible discovery, an environment overlay, and environment-variable overrides.

Layers, lowest precedence first; each layer overrides the ones before it key by key:

1. built-in defaults (the `FIELDS` table below);
2. system file   `/etc/playbook-nb/config.toml`;
3. user file     `platformdirs.user_config_dir("playbook-nb")/config.toml` (Linux: `~/.config/playbook-nb/`);
4. project file  `./playbook.toml` in the current directory;
   when `PLAYBOOK_CONFIG=/path/file.toml` is set, that one file (which must exist) replaces 2-4;
5. environment overlay: with `PLAYBOOK_ENV=NAME`, right after each file above, the file beside it named
   `<stem>.NAME.toml` (`config.production.toml`, `playbook.production.toml`, `custom.production.toml`) is read
   too, when it exists. Overlay files were chosen over `[env.NAME]` tables so `config --init NAME` writes a
   whole new file and never rewrites one a person edited;
6. environment variables: `PLAYBOOK_DB_PATH`, `PLAYBOOK_DB_URL`, `PLAYBOOK_ARTIFACTS_URL`, `PLAYBOOK_MAX_RETRIES`,
   `PLAYBOOK_LOG_LEVEL`.

Relative paths in a file are relative to that file's directory; `~` is expanded. `Config.sources` records,
for every "section.key", where its value came from ("default", a file path, or "env PLAYBOOK_..."), which is
what `playbook-nb config --show` prints. A value of the wrong type or out of range raises `ConfigError` (one
line naming the file and the key as section.key); unknown sections or keys are only warnings when loading,
and errors for `config --validate`.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from playbook_nb.domain.ages import AgeError, parse_age
from playbook_nb.domain.errors import PlaybookError
from playbook_nb.domain.records import Row, Values
from playbook_nb.user_dirs import user_dir

APP_NAME = "playbook-nb"
SYSTEM_CONFIG_DIR = Path("/etc/playbook-nb")
LOCAL_CONFIG_NAME = "playbook.toml"
USER_CONFIG_NAME = "config.toml"
LOG_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL")
ENV_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_-]*$")


class ConfigError(PlaybookError):
    """A configuration file or environment variable is invalid."""


# ---- the schema ----------------------------------------------------------------------------------


def _bool(v: Any) -> bool:
    if isinstance(v, bool):
        return v
    raise ValueError(f"expected true or false, got {v!r}")


def _int(minimum: int) -> Callable[[Any], int]:
    def convert(v: Any) -> int:
        if isinstance(v, str) and re.fullmatch(r"-?\d+", v.strip()):
            v = int(v)
        if isinstance(v, bool) or not isinstance(v, int):
            raise ValueError(f"expected an integer, got {v!r}")
        if v < minimum:
            raise ValueError(f"must be at least {minimum}, got {v}")
        return v

    return convert


def _positive_float(v: Any) -> float:
    if isinstance(v, bool) or not isinstance(v, int | float):
        raise ValueError(f"expected a number, got {v!r}")
    if v <= 0:
        raise ValueError(f"must be greater than 0, got {v}")
    return float(v)


def _choice(*choices: str, upper: bool = False) -> Callable[[Any], str]:
    def convert(v: Any) -> str:
        if not isinstance(v, str):
            raise ValueError(f"expected one of {', '.join(choices)}, got {v!r}")
        value = v.strip().upper() if upper else v.strip()
        if value not in choices:
            raise ValueError(f"expected one of {', '.join(choices)}, got {v!r}")
        return value

    return convert


def _url(v: Any) -> str | None:
    if not isinstance(v, str):
        raise ValueError(f"expected a URL (string), got {v!r}")
    return v.strip() or None


DEFAULT_PARALLEL_WORKERS = 4  # `parallel = true`


def _bool_or_workers(v: Any) -> bool | int:
    """`[execution] parallel`: true/false (the seed's form) or how many nodes may run at once (1 = off)."""
    if isinstance(v, bool):
        return v
    return _int(1)(v)


def parallel_workers(value: bool | int | None) -> int:
    """How many Command/Function nodes may run at once for an `[execution] parallel` value."""
    if value is True:
        return DEFAULT_PARALLEL_WORKERS
    if not value:
        return 1
    return max(1, int(value))


def _retention(v: Any) -> str | None:
    """A time to live such as "30d", "12h", "90m"; "" or unset: finished runs are kept."""
    if v is None or (isinstance(v, str) and not v.strip()):
        return None
    try:
        parse_age(str(v))
    except AgeError:
        raise ValueError(f"expected a time to live such as 30d, 12h or 90m, got {v!r}") from None
    return str(v).strip()


def _path(v: Any) -> str | None:
    if not isinstance(v, str):
        raise ValueError(f"expected a path (string), got {v!r}")
    return v or None  # "" means unset (e.g. logging.file_path = "" logs to the console only)


class Field(Values):
    """One configuration key: its conversion (which checks the value), default and help line."""

    convert: Callable[[Any], Any]
    default: Any
    help: str
    is_path: bool = False


FIELDS: dict[str, dict[str, Field]] = {
    "database": {
        "path": Field(_path, None, "run index (SQLite); default: the user data dir's runs.db", is_path=True),
        "url": Field(_url, None, "run index URL (postgresql://user@host/db); wins over path"),
        "timeout": Field(_positive_float, 30.0, "seconds to wait for a locked database"),
    },
    "artifacts": {
        "url": Field(_url, None, "executed notebooks: a directory or fsspec URL (s3://bucket/prefix)"),
    },
    "execution": {
        "max_retries": Field(
            _int(0), 3, "attempts a failed node gets in all, as in the seed (operator retries: one fewer)"
        ),
        "parallel": Field(
            _bool_or_workers, False, "run independent nodes at the same time: true (4 at once) or a number"
        ),
    },
    "runs": {
        "retention": Field(
            _retention,
            None,
            "time to live of finished runs, from their end (30d, 12h): `runs prune` removes older",
        ),
    },
    "logging": {
        "level": Field(_choice(*LOG_LEVELS, upper=True), "INFO", " | ".join(LOG_LEVELS)),
        "file_path": Field(_path, None, 'log file; "" or unset: console only', is_path=True),
        "max_size_mb": Field(_int(1), 10, "rotate the log file at this size"),
        "backup_count": Field(_int(0), 3, "rotated log files to keep"),
    },
    "ui": {
        "progress_style": Field(_choice("bar", "spinner", "none"), "bar", "bar | spinner | none"),
        "color_theme": Field(
            _choice("auto", "none"), "auto", "auto (colour on a terminal, NO_COLOR honoured) | none"
        ),
        "show_timestamps": Field(
            _bool, True, "a node's transition lines in the terminal start with the time"
        ),
        "compact_output": Field(_bool, False, "terminal: no command output lines and no summary table"),
    },
}

ALIASES: dict[tuple[str, str], str] = {("execution", "parallel_execution"): "parallel"}  # the seed's spelling

ENV_OVERRIDES = {
    "PLAYBOOK_DB_PATH": ("database", "path"),
    "PLAYBOOK_DB_URL": ("database", "url"),
    "PLAYBOOK_ARTIFACTS_URL": ("artifacts", "url"),
    "PLAYBOOK_MAX_RETRIES": ("execution", "max_retries"),
    "PLAYBOOK_LOG_LEVEL": ("logging", "level"),
    "PLAYBOOK_RUNS_RETENTION": ("runs", "retention"),
}

# What `config --init NAME` changes from the defaults for well-known environment names.
ENV_PRESETS: dict[str, dict[tuple[str, str], Any]] = {
    "development": {("logging", "level"): "DEBUG"},
    "testing": {("execution", "max_retries"): 0, ("ui", "color_theme"): "none"},
    "production": {("logging", "level"): "INFO", ("ui", "compact_output"): True},
}


class DatabaseConfig(Values):
    """`[database]`."""

    path: Path | None = None
    url: str | None = None
    timeout: float = 30.0


class ArtifactsConfig(Values):
    """`[artifacts]`."""

    url: str | None = None


class ExecutionConfig(Values):
    """`[execution]`."""

    max_retries: int = 3
    parallel: bool | int = False


class RunsConfig(Values):
    """`[runs]`."""

    retention: str | None = None


class LoggingConfig(Values):
    """`[logging]`."""

    level: str = "INFO"
    file_path: Path | None = None
    max_size_mb: int = 10
    backup_count: int = 3


class UIConfig(Values):
    """`[ui]`."""

    progress_style: str = "bar"
    color_theme: str = "auto"
    show_timestamps: bool = True
    compact_output: bool = False


@dataclass(eq=False, repr=False, init=False)  # __init__, frozen, eq, hash, repr: Row's
class Config(Row):
    """The effective configuration: every section, the files read and where each value came from."""

    database: DatabaseConfig = field(default_factory=DatabaseConfig)
    artifacts: ArtifactsConfig = field(default_factory=ArtifactsConfig)
    execution: ExecutionConfig = field(default_factory=ExecutionConfig)
    runs: RunsConfig = field(default_factory=RunsConfig)
    logging: LoggingConfig = field(default_factory=LoggingConfig)
    ui: UIConfig = field(default_factory=UIConfig)
    # [groups]: group name -> member names, for gate approvers "group:NAME" (issue 16); a later file's
    # entry for a group replaces an earlier one's
    groups: dict[str, tuple[str, ...]] = field(default_factory=dict)
    # [notify]: checked, as {"events", "link", "retries", "timeout", "targets": {kind: options}} (issue 16.5;
    # see app.notify); a later file's [notify] replaces an earlier one's
    notify: dict[str, Any] = field(default_factory=dict)
    environment: str | None = None  # PLAYBOOK_ENV
    files: tuple[Path, ...] = ()  # files read, lowest precedence first
    sources: dict[str, str] = field(default_factory=dict)  # "section.key" -> "default" | file | "env NAME"
    warnings: tuple[str, ...] = ()

    def get(self, key: str) -> Any:
        section, name = key.split(".", 1)
        return getattr(getattr(self, section), name)

    def items(self) -> list[tuple[str, Any, str]]:
        """(key, value, source) for every setting, in schema order."""
        return [
            (f"{s}.{k}", self.get(f"{s}.{k}"), self.sources.get(f"{s}.{k}", "default"))
            for s, keys in FIELDS.items()
            for k in keys
        ]


_SECTIONS = {
    "database": DatabaseConfig,
    "artifacts": ArtifactsConfig,
    "execution": ExecutionConfig,
    "runs": RunsConfig,
    "logging": LoggingConfig,
    "ui": UIConfig,
}


# ---- discovery -----------------------------------------------------------------------------------


def user_config_dir() -> Path:
    return Path(user_dir("config"))


def overlay_path(path: Path, environment: str) -> Path:
    """The environment overlay beside a config file: config.toml -> config.NAME.toml."""
    return path.with_name(f"{path.stem}.{environment}{path.suffix or '.toml'}")


def candidate_files(
    cwd: Path,
    env: Mapping[str, str],
    environment: str | None,
    *,
    user_dir: Path | None = None,
    system_dir: Path | None = None,
) -> list[tuple[Path, bool]]:
    """(path, required) in reading order, lowest precedence first, overlays of `environment` included."""
    explicit = env.get("PLAYBOOK_CONFIG")
    if explicit:
        bases = [(Path(explicit).expanduser().absolute(), True)]
    else:
        bases = [
            ((system_dir or SYSTEM_CONFIG_DIR) / USER_CONFIG_NAME, False),
            ((user_dir or user_config_dir()) / USER_CONFIG_NAME, False),
            (cwd / LOCAL_CONFIG_NAME, False),
        ]
    files: list[tuple[Path, bool]] = []
    for path, required in bases:
        files.append((path, required))
        if environment:
            files.append((overlay_path(path, environment), False))
    return files


# ---- loading -------------------------------------------------------------------------------------


@dataclass(eq=False, repr=False)  # never compared nor shown: its class costs less to define
class _Loaded:
    values: dict[tuple[str, str], Any] = field(default_factory=dict)
    sources: dict[tuple[str, str], str] = field(default_factory=dict)
    files: list[Path] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    unknown: list[str] = field(default_factory=list)
    groups: dict[str, tuple[str, ...]] = field(default_factory=dict)
    notify: dict[str, Any] = field(default_factory=dict)


NOTIFY_EVENTS = ("gate_waiting", "node_failed", "run_finished")


def _read_notify(path: Path, table: Any, loaded: _Loaded) -> None:
    """`[notify]`: events, link, retries, timeout, and one entry per target: `kind = "URL"` or a table of the
    notifier's options (`url`, ...). Which kinds exist is checked when a run builds them."""
    if not isinstance(table, dict):
        loaded.errors.append(f"{path}: 'notify' must be a table")
        return
    notify: dict[str, Any] = {"targets": {}}
    for key, value in table.items():
        where = f"{path}: notify.{key}"
        if key == "events":
            if not isinstance(value, list) or any(e not in NOTIFY_EVENTS for e in value):
                loaded.errors.append(f"{where}: expected a list of {', '.join(NOTIFY_EVENTS)}, got {value!r}")
                return
            notify["events"] = tuple(value)
        elif key == "link":
            if not isinstance(value, str) or not value.startswith(("http://", "https://")):
                loaded.errors.append(f"{where}: expected the Jupyter server's http(s) URL, got {value!r}")
                return
            notify["link"] = value
        elif key in ("retries", "timeout"):
            if isinstance(value, bool) or not isinstance(value, int | float) or value < 0:
                loaded.errors.append(f"{where}: expected a number, 0 or more, got {value!r}")
                return
            notify[key] = value
        elif isinstance(value, str):
            notify["targets"][key] = {"url": value}
        elif isinstance(value, dict):
            notify["targets"][key] = dict(value)
        else:
            loaded.errors.append(
                f"{where}: expected a URL or a table of the notifier's options, got {value!r}"
            )
            return
    loaded.notify = notify


def _read_groups(path: Path, table: Any, loaded: _Loaded) -> None:
    """`[groups]` sre = ["alice", "bob"]: who belongs to a group named in a gate's approvers."""
    if not isinstance(table, dict):
        loaded.errors.append(f"{path}: 'groups' must be a table of lists of names")
        return
    for name, members in table.items():
        if not isinstance(members, list) or not all(isinstance(m, str) and m.strip() for m in members):
            loaded.errors.append(f"{path}: groups.{name}: expected a list of names, got {members!r}")
            continue
        loaded.groups[name] = tuple(m.strip() for m in members)


def _read_file(path: Path, loaded: _Loaded) -> None:
    import tomllib  # at use: only when a configuration file exists

    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except tomllib.TOMLDecodeError as err:
        loaded.errors.append(f"{path}: invalid TOML: {err}")
        return
    except OSError as err:
        loaded.errors.append(f"{path}: cannot read: {err.strerror or err}")
        return
    loaded.files.append(path)
    for section, table in data.items():
        if section == "groups":
            _read_groups(path, table, loaded)
            continue
        if section == "notify":
            _read_notify(path, table, loaded)
            continue
        if section not in FIELDS:
            loaded.unknown.append(
                f"{path}: unknown section {section!r}; known: {', '.join([*FIELDS, 'groups', 'notify'])}"
            )
            continue
        if not isinstance(table, dict):
            loaded.errors.append(f"{path}: {section!r} must be a table")
            continue
        for key, raw in table.items():
            name = ALIASES.get((section, key), key) if isinstance(key, str) else str(key)
            spec = FIELDS[section].get(name)
            if spec is None:
                known = ", ".join(FIELDS[section])
                loaded.unknown.append(f"{path}: unknown key {section}.{key}; known in {section}: {known}")
                continue
            try:
                value = spec.convert(raw)
            except ValueError as err:
                loaded.errors.append(f"{path}: {section}.{key}: {err}")
                continue
            if spec.is_path and value is not None:
                value = str((path.parent / Path(value).expanduser()).resolve())
            loaded.values[(section, name)] = value
            loaded.sources[(section, name)] = str(path)


def _apply_env(env: Mapping[str, str], cwd: Path, loaded: _Loaded) -> None:
    for var, (section, name) in ENV_OVERRIDES.items():
        raw = env.get(var)
        if raw is None or raw == "":
            continue
        spec = FIELDS[section][name]
        try:
            value = spec.convert(raw)
        except ValueError as err:
            loaded.errors.append(f"environment variable {var}: {err}")
            continue
        if spec.is_path and value is not None:
            value = str((cwd / Path(value).expanduser()).resolve())
        loaded.values[(section, name)] = value
        loaded.sources[(section, name)] = f"env {var}"


def _load(
    cwd: Path | None, env: Mapping[str, str], user_dir: Path | None, system_dir: Path | None
) -> tuple[Config | None, _Loaded]:
    cwd = Path(cwd or Path.cwd()).absolute()
    loaded = _Loaded()
    environment = env.get("PLAYBOOK_ENV") or None
    if environment is not None and not ENV_NAME.match(environment):
        loaded.errors.append(f"environment variable PLAYBOOK_ENV: invalid environment name {environment!r}")
        environment = None
    for path, required in candidate_files(cwd, env, environment, user_dir=user_dir, system_dir=system_dir):
        if path.is_file():
            _read_file(path, loaded)
        elif required:
            loaded.errors.append(f"{path}: configuration file named by PLAYBOOK_CONFIG does not exist")
    _apply_env(env, cwd, loaded)
    if loaded.errors:
        return None, loaded
    sections: dict[str, Any] = {}
    for section, cls in _SECTIONS.items():
        kwargs = {}
        for name, spec in FIELDS[section].items():
            value = loaded.values.get((section, name), spec.default)
            kwargs[name] = Path(value) if spec.is_path and value is not None else value
        sections[section] = cls(**kwargs)
    config = Config(
        **sections,
        groups=dict(loaded.groups),
        notify=dict(loaded.notify),
        environment=environment,
        files=tuple(loaded.files),
        sources={f"{s}.{k}": src for (s, k), src in loaded.sources.items()},
        warnings=tuple(loaded.unknown),
    )
    return config, loaded


def load_config(
    cwd: str | os.PathLike[str] | None = None,
    env: Mapping[str, str] = os.environ,
    *,
    user_dir: str | os.PathLike[str] | None = None,
    system_dir: str | os.PathLike[str] | None = None,
) -> Config:
    """The effective configuration. Raises ConfigError (one line; the first problem) when it is invalid.

    `user_dir` and `system_dir` replace the platform directories (tests, packaging).
    """
    config, loaded = _load(
        Path(cwd) if cwd else None,
        env,
        Path(user_dir) if user_dir else None,
        Path(system_dir) if system_dir else None,
    )
    if config is None:
        more = f" (and {len(loaded.errors) - 1} more problems)" if len(loaded.errors) > 1 else ""
        raise ConfigError(loaded.errors[0] + more)
    return config


def validate_config(
    cwd: str | os.PathLike[str] | None = None,
    env: Mapping[str, str] = os.environ,
    *,
    user_dir: str | os.PathLike[str] | None = None,
    system_dir: str | os.PathLike[str] | None = None,
) -> tuple[Config | None, list[str]]:
    """Every problem, one line each (bad values, unreadable files, unknown sections and keys)."""
    config, loaded = _load(
        Path(cwd) if cwd else None,
        env,
        Path(user_dir) if user_dir else None,
        Path(system_dir) if system_dir else None,
    )
    return config, loaded.errors + loaded.unknown


# ---- writing -------------------------------------------------------------------------------------


def _toml_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return repr(value)
    return json.dumps(str(value), ensure_ascii=False)


def render_template(environment: str | None = None) -> str:
    """A complete, commented configuration file: the defaults, or those of environment `environment`."""
    preset = ENV_PRESETS.get(environment or "", {})
    if environment:
        lines = [
            f"# playbook-nb configuration for environment {environment!r}.",
            f"# Read after the file beside it when PLAYBOOK_ENV={environment}; it overrides what it sets.",
        ]
    else:
        lines = [
            "# playbook-nb configuration.",
            "# Read from /etc/playbook-nb/config.toml, the user config dir's config.toml and ./playbook.toml",
            "# (later ones win), or from the file PLAYBOOK_CONFIG names.",
        ]
    for section, keys in FIELDS.items():
        lines += ["", f"[{section}]"]
        for name, spec in keys.items():
            value = preset.get((section, name), spec.default)
            # An overlay sets only what differs for its environment; the rest stays commented out so the
            # base files keep deciding it.
            commented = value is None or (environment is not None and (section, name) not in preset)
            text = f"{name} = {_toml_value('' if value is None else value)}  # {spec.help}"
            lines.append(f"# {text}" if commented else text)
    return "\n".join(lines) + "\n"


def write_config_file(path: Path, text: str, *, force: bool = False) -> Path:
    path = Path(path).expanduser()
    if path.exists() and not force:
        raise ConfigError(f"{path} already exists; use --force to overwrite it")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
    except OSError as err:
        raise ConfigError(f"cannot write {path}: {err.strerror or err}") from None
    return path


def init_path(environment: str, directory: Path | None = None) -> Path:
    """Where `config --init NAME` writes: `<user config dir>/config.NAME.toml`."""
    if not ENV_NAME.match(environment):
        raise ConfigError(f"invalid environment name {environment!r}: use letters, digits, '-' and '_'")
    return overlay_path((directory or user_config_dir()) / USER_CONFIG_NAME, environment)
