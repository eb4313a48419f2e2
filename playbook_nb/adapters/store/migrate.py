"""Numbered schema migrations: `migrations/NNNN_name.sql`, applied in order, tracked by `PRAGMA user_version`.

A migration file is plain SQL. Version N is reached by applying every file numbered 1..N; each file runs in
its own transaction with the `user_version` bump, so a failed migration leaves the previous version intact.
"""

from __future__ import annotations

import re
import sqlite3
from dataclasses import dataclass
from importlib import resources

_NAME = re.compile(r"^(\d{4})_[a-z0-9_]+\.sql$")


@dataclass(frozen=True)
class Migration:
    version: int
    name: str
    sql: str


def load_migrations() -> list[Migration]:
    """Every shipped migration, by version; checks that the numbers run 1, 2, 3 ... without gaps."""
    found = []
    for entry in resources.files("playbook_nb.adapters.store").joinpath("migrations").iterdir():
        match = _NAME.match(entry.name)
        if match:
            found.append(Migration(int(match.group(1)), entry.name, entry.read_text(encoding="utf-8")))
    found.sort(key=lambda m: m.version)
    for expected, migration in enumerate(found, start=1):
        if migration.version != expected:
            raise RuntimeError(f"migration {migration.name}: expected number {expected:04d}")
    return found


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
    return len(load_migrations())


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
