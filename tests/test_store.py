"""The run record store on SQLite files only: WAL schema, user_version, sqlite URLs, file paths and errors.

Behaviour common to SQLite and PostgreSQL (runs, nodes, attempts, decisions, hash chain, status rules,
listing, statistics, deletion, concurrency) is tested on both backends in test_store_backends.py.
"""

from __future__ import annotations

import os
import sqlite3
from pathlib import Path

import pytest
from conftest import new_run

from playbook_nb.adapters.store import SQLiteStore, Store, resolve_db_path
from playbook_nb.adapters.store.migrate import latest_version, load_migrations
from playbook_nb.domain.errors import StoreError

# ---- schema and opening --------------------------------------------------------------------------


def test_migrations_create_schema_and_set_user_version(state_db):
    assert not state_db.parent.exists()
    with Store.open(state_db) as store:
        assert isinstance(store, SQLiteStore)
        assert store.schema_version == latest_version() == len(load_migrations()) >= 1
    conn = sqlite3.connect(state_db)
    names = {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type IN ('table', 'index')")}
    assert {"runs", "node_states", "attempts", "decisions", "events"} <= names
    assert {"runs_workflow_started", "runs_status_started", "runs_started"} <= names
    assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    assert conn.execute("PRAGMA user_version").fetchone()[0] == latest_version()


def test_open_accepts_sqlite_url_and_refuses_postgres_for_now(tmp_path):
    with Store.open(f"sqlite:///{tmp_path}/u/runs.db") as store:
        assert store.path == tmp_path / "u" / "runs.db"
    with pytest.raises(StoreError, match="PostgreSQL"):
        Store.open("postgresql://user:secret@db.example/playbook")


def test_unwritable_directory_is_one_clear_store_error(tmp_path):
    blocker = tmp_path / "not-a-dir"
    blocker.write_text("a file where a directory should be")
    target = blocker / "state" / "runs.db"
    with pytest.raises(StoreError) as info:
        Store.open(target)
    message = str(info.value)
    assert str(blocker) in message and "\n" not in message


@pytest.mark.skipif(os.geteuid() == 0, reason="root ignores directory permissions")
def test_read_only_directory_is_a_store_error(tmp_path):
    locked = tmp_path / "locked"
    locked.mkdir()
    locked.chmod(0o500)
    try:
        with pytest.raises(StoreError, match="not writable"):
            Store.open(locked / "runs.db")
    finally:
        locked.chmod(0o700)


# ---- artifact directories ------------------------------------------------------------------------


def test_artifacts_default_to_a_directory_beside_the_database_file(state_db):
    with Store.open(state_db) as store:
        run = new_run(store)
        directory = store.artifact_dir(run.id)
        # artifacts/<index file stem>/<run id>: another index file in the same folder never shares it
        assert directory == state_db.parent / "artifacts" / "runs" / str(run.id) and directory.is_dir()
        assert store.get_run(run.id).artifact_dir == str(directory)


def test_artifacts_root_can_be_given(tmp_path):
    with Store.open(tmp_path / "db" / "runs.db", artifacts_root=tmp_path / "blobs") as store:
        run = new_run(store)
        assert store.artifact_dir(run.id) == tmp_path / "blobs" / str(run.id)


# ---- location ------------------------------------------------------------------------------------


def test_resolve_db_path_precedence(tmp_path, monkeypatch):
    from playbook_nb.app.config import load_config

    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "data"))
    (tmp_path / "playbook.toml").write_text('[database]\npath = "cfg/runs.db"\n')
    config = load_config(cwd=tmp_path, env={}, user_dir=tmp_path / "u", system_dir=tmp_path / "s")
    env = {"PLAYBOOK_DB_PATH": str(tmp_path / "env.db")}
    assert resolve_db_path("cli.db", config, env=env) == Path("cli.db")
    assert resolve_db_path(None, config, env=env) == tmp_path / "env.db"
    assert resolve_db_path(None, config, env={}) == tmp_path / "cfg" / "runs.db"
    empty = load_config(cwd=tmp_path / "u", env={}, user_dir=tmp_path / "u", system_dir=tmp_path / "s")
    assert resolve_db_path(None, empty, env={}) == tmp_path / "data" / "playbook-nb" / "runs.db"
