"""A real, throw-away PostgreSQL server for the tests and the benchmark (never a mock).

`PLAYBOOK_TEST_PG_URL=postgresql://user@host:port/db` uses a server you already run (CI service container):
each test then gets its own database created there. Otherwise the Debian/Ubuntu `postgresql` binaries
(`/usr/lib/postgresql/<version>/bin`, or `pg_config --bindir`) start a private cluster in a temporary
directory, on a free loopback port, for the test session; it is stopped and removed at the end.
`initdb` refuses to run as root, so as root the cluster belongs to the unprivileged user `nobody`.
"""

from __future__ import annotations

import contextlib
import os
import pwd
import shutil
import socket
import subprocess
import tempfile
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

TEST_URL_ENV = "PLAYBOOK_TEST_PG_URL"


def pg_bindir() -> Path | None:
    """The directory holding initdb/pg_ctl, or None when PostgreSQL is not installed."""
    candidates = []
    if shutil.which("pg_config"):
        with contextlib.suppress(OSError, subprocess.SubprocessError):
            out = subprocess.run(["pg_config", "--bindir"], capture_output=True, text=True, check=True)
            candidates.append(Path(out.stdout.strip()))
    root = Path("/usr/lib/postgresql")
    if root.is_dir():
        versions = sorted(
            (p for p in root.iterdir() if p.name.split(".")[0].isdigit()),
            key=lambda p: int(p.name.split(".")[0]),
            reverse=True,
        )
        candidates += [v / "bin" for v in versions]
    if shutil.which("initdb"):
        candidates.append(Path(shutil.which("initdb")).parent)
    for candidate in candidates:
        if (candidate / "initdb").is_file() and (candidate / "pg_ctl").is_file():
            return candidate
    return None


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class PgServer:
    """A running server: `url(dbname)`, `create_database()`, `drop_database(name)`, `stop()`."""

    def __init__(self, base_url: str, stop=None):
        self.base_url = base_url  # URL of the maintenance database
        self._stop = stop

    def url(self, dbname: str) -> str:
        parts = urlsplit(self.base_url)
        return urlunsplit(parts._replace(path="/" + dbname))

    def admin(self):
        import psycopg

        return psycopg.connect(self.base_url, autocommit=True)

    def create_database(self, prefix: str = "pbtest") -> str:
        """A new empty database; returns its URL."""
        name = f"{prefix}_{uuid.uuid4().hex[:12]}"
        with self.admin() as conn:
            conn.execute(f'CREATE DATABASE "{name}"')
        return self.url(name)

    def drop_database(self, url: str) -> None:
        name = urlsplit(url).path.lstrip("/")
        with self.admin() as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')

    def stop(self) -> None:
        if self._stop is not None:
            self._stop()
            self._stop = None


def _as_owner(user: str | None, cmd: list[str], **kwargs) -> subprocess.CompletedProcess:
    if user is not None:
        cmd = ["runuser", "-u", user, "--", *cmd]
    return subprocess.run(cmd, capture_output=True, text=True, **kwargs)


def start_local_server(settings: dict[str, str] | None = None) -> PgServer:
    """initdb + pg_ctl start a private cluster; raises RuntimeError when it cannot."""
    bindir = pg_bindir()
    if bindir is None:
        raise FileNotFoundError("PostgreSQL server binaries (initdb, pg_ctl) not found")
    user = None
    if os.geteuid() == 0:
        user = "nobody"
        pw = pwd.getpwnam(user)
    base = Path(tempfile.mkdtemp(prefix="playbook-nb-pg-"))
    data = base / "data"
    if user is not None:
        os.chown(base, pw.pw_uid, pw.pw_gid)
    init = _as_owner(
        user,
        [str(bindir / "initdb"), "-D", str(data), "-U", "postgres", "-A", "trust", "-E", "UTF8", "--no-sync"],
    )
    if init.returncode != 0:
        shutil.rmtree(base, ignore_errors=True)
        raise RuntimeError(f"initdb failed: {init.stderr.strip() or init.stdout.strip()}")
    port = free_port()
    options = {
        "port": str(port),
        "listen_addresses": "127.0.0.1",
        "unix_socket_directories": str(base),
        "max_connections": "200",
        **(settings or {}),
    }
    opts = " ".join(f"-c {k}={v}" for k, v in options.items())
    start = _as_owner(
        user,
        [str(bindir / "pg_ctl"), "-D", str(data), "-o", opts, "-l", str(base / "server.log"), "-w", "start"],
        timeout=60,
    )
    if start.returncode != 0:
        log = (base / "server.log").read_text() if (base / "server.log").exists() else ""
        shutil.rmtree(base, ignore_errors=True)
        raise RuntimeError(f"pg_ctl start failed: {start.stderr.strip()} {log[-500:]}")

    def stop() -> None:
        _as_owner(user, [str(bindir / "pg_ctl"), "-D", str(data), "-m", "immediate", "stop"], timeout=60)
        shutil.rmtree(base, ignore_errors=True)

    url = f"postgresql://postgres@127.0.0.1:{port}/postgres"
    deadline = time.monotonic() + 30
    while True:
        try:
            import psycopg

            psycopg.connect(url, connect_timeout=2).close()
            break
        except Exception:
            if time.monotonic() > deadline:
                stop()
                raise
            time.sleep(0.2)
    return PgServer(url, stop)


@contextlib.contextmanager
def pg_server(settings: dict[str, str] | None = None) -> Iterator[PgServer]:
    """An external server (PLAYBOOK_TEST_PG_URL) or a private one, stopped afterwards."""
    external = os.environ.get(TEST_URL_ENV)
    server = PgServer(external) if external else start_local_server(settings)
    try:
        yield server
    finally:
        server.stop()
