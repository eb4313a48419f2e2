"""Look for known secret values in run artifacts: notebooks, HTML, JSON, SQLite files, logs, anything.

A finding names the file and where in it (notebook cell, JSON path, table.column and row, line), never the
value. The forms looked for (bare, shell-quoted, JSON-escaped, repr) are the ones `Redactor` masks: a finding
is any place where redacting would change the text.

    redactor = Redactor(["tok-7f3a9c1e55"])
    report = scan_path(Path("/runs"), redactor)   # report.findings == [] when clean
"""

from __future__ import annotations

import html
import json
import os
import shutil
import sqlite3
import tempfile
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from playbook_nb.constants import SECRET_ENV_PREFIX
from playbook_nb.domain.errors import PlaybookError
from playbook_nb.domain.redact import MASK, MIN_SECRET_LENGTH, Redactor

SQLITE_HEADER = b"SQLite format 3\x00"
SQLITE_SIDE_FILES = ("-wal", "-journal", "-shm")
BINARY_SNIFF = 8192


@dataclass(frozen=True)
class Finding:
    path: Path
    location: str
    count: int = 1

    def __str__(self) -> str:
        times = f" ({self.count} occurrences)" if self.count > 1 else ""
        return f"{self.path}: {self.location}{times}"


def count_secrets(text: str, redactor: Redactor) -> int:
    """How many secret forms `text` holds (0 when clean)."""
    if not redactor or not isinstance(text, str) or not text:
        return 0
    return redactor.redact(text).count(MASK) - text.count(MASK)


def secret_env_values(env: Mapping[str, str] | None = None) -> dict[str, str]:
    """The `PLAYBOOK_SECRET_*` environment variables (the way headless runs hand secrets to the kernel)."""
    env = os.environ if env is None else env
    return {name: value for name, value in env.items() if name.startswith(SECRET_ENV_PREFIX) and value}


# ---- walking ------------------------------------------------------------------------------------------------


def iter_files(root: Path) -> Iterator[Path]:
    """Every regular file under `root` (or `root` itself), in a stable order; symlinks are not followed."""
    if root.is_file():
        yield root
        return
    for directory, dirs, files in os.walk(root):
        dirs.sort()
        for name in sorted(files):
            path = Path(directory) / name
            if path.is_file() and not path.is_symlink():
                yield path


@dataclass
class ScanReport:
    findings: list[Finding] = field(default_factory=list)
    files: int = 0
    errors: list[str] = field(default_factory=list)


def scan_path(root: Path, redactor: Redactor) -> ScanReport:
    """Findings in every file under `root`; files that cannot be read are listed in `errors`."""
    report = ScanReport()
    for path in iter_files(root):
        report.files += 1
        try:
            report.findings.extend(scan_file(path, redactor))
        except OSError as err:
            report.errors.append(f"{path}: cannot read: {err.strerror or err}")
    return report


def scan_file(path: Path, redactor: Redactor) -> list[Finding]:
    data = path.read_bytes()
    suffix = path.suffix.lower()
    if data.startswith(SQLITE_HEADER):
        return _scan_sqlite(path, data, redactor)
    if suffix == ".ipynb" or suffix == ".json":
        structured = _scan_json(path, data, redactor, notebook=suffix == ".ipynb")
        if structured is not None:
            return structured or _scan_text(path, data, redactor)
    if b"\x00" in data[:BINARY_SNIFF] or path.name.endswith(SQLITE_SIDE_FILES):
        return _scan_binary(path, data, redactor, "raw bytes")
    return _scan_text(path, data, redactor, unescape_html=suffix in (".html", ".htm", ".svg", ".xml"))


# ---- formats ------------------------------------------------------------------------------------------------


def _scan_text(path: Path, data: bytes, redactor: Redactor, unescape_html: bool = False) -> list[Finding]:
    findings = []
    text = data.decode("utf-8", errors="replace")
    for number, line in enumerate(text.splitlines(), start=1):
        count = count_secrets(line, redactor)
        if not count and unescape_html and "&" in line:
            count = count_secrets(html.unescape(line), redactor)
        if count:
            findings.append(Finding(path, f"line {number}", count))
    return findings


def _scan_binary(path: Path, data: bytes, redactor: Redactor, what: str) -> list[Finding]:
    count = count_secrets(data.decode("utf-8", errors="replace"), redactor)
    count = count or count_secrets(data.decode("utf-16-le", errors="replace"), redactor)
    return [Finding(path, what, count)] if count else []


def _walk_strings(value: Any, trail: tuple = ()) -> Iterator[tuple[tuple, str]]:
    """(path, string) for every string in a JSON value, keys included."""
    if isinstance(value, str):
        yield trail, value
    elif isinstance(value, Mapping):
        for key, item in value.items():
            yield trail, str(key)
            yield from _walk_strings(item, (*trail, key))
    elif isinstance(value, list):
        for index, item in enumerate(value):
            yield from _walk_strings(item, (*trail, index))


def _json_path(trail: Iterable) -> str:
    return "$" + "".join(f"[{part}]" if isinstance(part, int) else f".{part}" for part in trail)


def _notebook_location(trail: tuple, cells: list) -> str:
    if len(trail) >= 2 and trail[0] == "cells" and isinstance(trail[1], int):
        index = trail[1]
        cell = cells[index] if index < len(cells) and isinstance(cells[index], Mapping) else {}
        where = f"cell {index} ({cell.get('cell_type', '?')})"
        rest = trail[2:]
        if rest[:1] == ("outputs",) and len(rest) >= 2:
            return f"{where} output {rest[1]}"
        if rest:
            return f"{where} {rest[0]}"
        return where
    if trail[:1] == ("metadata",):
        return "notebook metadata " + _json_path(trail[1:])
    return "notebook " + _json_path(trail)


def _scan_json(path: Path, data: bytes, redactor: Redactor, notebook: bool) -> list[Finding] | None:
    """Findings located by cell or JSON path; None when the file is not valid JSON."""
    try:
        document = json.loads(data.decode("utf-8"))
    except (UnicodeDecodeError, ValueError):
        return None
    cells = document.get("cells", []) if notebook and isinstance(document, Mapping) else []
    counts: dict[str, int] = {}
    for trail, text in _walk_strings(document):
        count = count_secrets(text, redactor)
        if count:
            where = _notebook_location(trail, cells) if notebook else "JSON " + _json_path(trail)
            counts[where] = counts.get(where, 0) + count
    return [Finding(path, where, count) for where, count in counts.items()]


def _scan_sqlite(path: Path, data: bytes, redactor: Redactor) -> list[Finding]:
    """Every text (and blob) value of every table, read from a private copy (the file and its WAL), so
    a database in use is neither locked nor changed. Then the raw bytes, for values left in free pages."""
    findings: list[Finding] = []
    with tempfile.TemporaryDirectory(prefix="playbook-nb-scan-") as tmp:
        copy = Path(tmp) / "copy.db"
        copy.write_bytes(data)
        wal = path.with_name(path.name + "-wal")
        if wal.is_file():
            shutil.copyfile(wal, Path(tmp) / "copy.db-wal")
        try:
            findings = _scan_sqlite_rows(path, copy, redactor)
        except sqlite3.Error:  # damaged or encrypted: the raw bytes are all there is
            return _scan_binary(path, data, redactor, "raw bytes (unreadable as SQLite)")
    if not findings:
        findings = _scan_binary(path, data, redactor, "raw bytes (free pages or deleted rows)")
    return findings


def _scan_sqlite_rows(path: Path, copy: Path, redactor: Redactor) -> list[Finding]:
    findings: list[Finding] = []
    conn = sqlite3.connect(copy)
    try:
        conn.text_factory = lambda raw: raw.decode("utf-8", errors="replace")
        tables = [
            (name, sql or "")
            for name, sql in conn.execute(
                "SELECT name, sql FROM sqlite_master WHERE type = 'table' ORDER BY name"
            ).fetchall()
        ]
        for name, sql in tables:
            quoted = '"' + name.replace('"', '""') + '"'
            columns = [row[1] for row in conn.execute(f"PRAGMA table_info({quoted})").fetchall()]
            has_rowid = "WITHOUT ROWID" not in sql.upper()
            key = "rowid" if has_rowid else "NULL"
            select = ", ".join('"' + c.replace('"', '""') + '"' for c in columns)
            for number, row in enumerate(conn.execute(f"SELECT {key}, {select} FROM {quoted}"), start=1):
                rowid = row[0] if has_rowid else number
                for column, value in zip(columns, row[1:], strict=True):
                    if isinstance(value, bytes):
                        value = value.decode("utf-8", errors="replace")
                    count = count_secrets(value, redactor) if isinstance(value, str) else 0
                    if count:
                        findings.append(Finding(path, f"table {name}.{column} (row {rowid})", count))
    finally:
        conn.close()
    return findings


# ---- where the secret values come from --------------------------------------------------------------------


class ScanArgumentError(PlaybookError):
    """The secret values to look for cannot be gathered as asked (unset variable, unreadable file)."""


def collect_secret_values(
    *,
    value_envs: Iterable[str] = (),
    values_file: Path | None = None,
    runbook_path: Path | None = None,
    var: Iterable[str] = (),
    env: Mapping[str, str] | None = None,
) -> dict[str, str]:
    """Secret values by a label that names their source (never the value). Without any source given, the
    `PLAYBOOK_SECRET_*` environment variables."""
    env = os.environ if env is None else env
    values: dict[str, str] = {}
    for name in value_envs:
        if not env.get(name):
            raise ScanArgumentError(f"--value-env {name}: environment variable {name} is not set or empty")
        values[f"environment variable {name}"] = env[name]
    if values_file is not None:
        try:
            lines = Path(values_file).read_text(encoding="utf-8").splitlines()
        except (OSError, UnicodeDecodeError) as err:
            raise ScanArgumentError(f"--values-file {values_file}: cannot read: {err}") from None
        for number, line in enumerate(lines, start=1):
            if line.strip() and not line.lstrip().startswith("#"):
                values[f"{values_file} line {number}"] = line
    var = list(var)
    if var and runbook_path is None:
        raise ScanArgumentError("--var needs --runbook (the runbook says which variables are secret)")
    if runbook_path is not None:
        values.update(_runbook_secret_values(runbook_path, var, env))
    if not (value_envs or values_file or runbook_path):
        values.update({f"environment variable {k}": v for k, v in secret_env_values(env).items()})
    return values


def _runbook_secret_values(path: Path, var: list[str], env: Mapping[str, str]) -> dict[str, str]:
    from playbook_nb.app.inputs import load_runbook, parse_var_assignments

    runbook = load_runbook(path, allow_secret_defaults=True)
    given = parse_var_assignments(var)
    found = {}
    for name in sorted(runbook.secret_names):
        value = given.get(name) or env.get(SECRET_ENV_PREFIX + name)
        if value:
            found[f"secret variable {name}"] = value
        variable = runbook.variables[name]
        if variable.has_default and isinstance(variable.default, str) and variable.default:
            # written in the file by an older version (now refused): every record of it may hold it
            found[f"secret variable {name} (its default in {path})"] = variable.default
    return found


def check_scannable(values: Mapping[str, str]) -> list[str]:
    """Warnings for values too short to look for (the Redactor leaves them alone too)."""
    return [
        f"{label}: fewer than {MIN_SECRET_LENGTH} characters, not looked for"
        for label, value in values.items()
        if len(value) < MIN_SECRET_LENGTH
    ]
