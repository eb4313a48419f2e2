"""Numbered schema migrations: `migrations/NNNN_name.sql`, applied in order, tracked by `PRAGMA user_version`.

A migration file is plain SQL. Version N is reached by applying every file numbered 1..N; each file runs in
its own transaction with the `user_version` bump, so a failed migration leaves the previous version intact.
"""

from __future__ import annotations

import os
import re
import sqlite3
from pathlib import Path

from playbook_nb.domain.records import Values

_NAME = re.compile(r"^(\d{4})_[a-z0-9_]+\.sql$")
# The package's own folder (shipped as package data, never zipped): listing it is all that opening an index
# at the latest version needs (importlib.resources and reading every file cost a few ms at each start).
MIGRATIONS_DIR = Path(__file__).with_name("migrations")


class Migration(Values):
    version: int
    name: str
    sql: str


def _numbered() -> list[tuple[int, str]]:
    """(version, file name) of every shipped migration, by version; checks that the numbers run 1, 2, 3 ...
    without gaps."""
    found = sorted(
        (int(match.group(1)), name) for name in os.listdir(MIGRATIONS_DIR) if (match := _NAME.match(name))
    )
    for expected, (version, name) in enumerate(found, start=1):
        if version != expected:
            raise RuntimeError(f"migration {name}: expected number {expected:04d}")
    return found


def load_migrations() -> list[Migration]:
    """Every shipped migration, by version, with its SQL."""
    return [
        Migration(version, name, (MIGRATIONS_DIR / name).read_text(encoding="utf-8"))
        for version, name in _numbered()
    ]


def split_statements(sql: str) -> list[str]:
    """Split a script into complete statements (triggers included) without executescript's implicit COMMIT."""
    statements: list[str] = []
    buffer = ""
    for line in sql.splitlines(keepends=True):
        buffer += line
        if sqlite3.complete_statement(buffer):
            statement = buffer.strip()
            if statement and not all(
                part.strip().startswith("--") or not part.strip() for part in statement.splitlines()
            ):
                statements.append(statement)
            buffer = ""
    if buffer.strip() and not all(p.strip().startswith("--") or not p.strip() for p in buffer.splitlines()):
        raise RuntimeError(f"incomplete SQL statement at the end of a migration: {buffer.strip()[:60]!r}")
    return statements


def latest_version() -> int:
    """The schema version this playbook-nb ships: its last migration's number (the file names only)."""
    return len(_numbered())


def migrate_sqlite(conn: sqlite3.Connection) -> int:
    """Bring the database to the latest version. Safe when several processes open a new file at once."""
    migrations = load_migrations()
    applied = 0
    for migration in migrations:
        conn.execute("BEGIN IMMEDIATE")
        try:
            (current,) = conn.execute("PRAGMA user_version").fetchone()
            if current >= migration.version:
                conn.execute("COMMIT")
                continue
            if current != migration.version - 1:
                raise RuntimeError(f"database at schema version {current}, cannot apply {migration.name}")
            for statement in split_statements(migration.sql):
                conn.execute(statement)
            conn.execute(f"PRAGMA user_version = {migration.version:d}")
            conn.execute("COMMIT")
            applied += 1
        except BaseException:
            conn.execute("ROLLBACK")
            raise
    return applied
