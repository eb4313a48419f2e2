"""A command never outlives its driver: a small watchdog process per driver kills what the driver leaves behind.

Linux's parent-death signal (`PR_SET_PDEATHSIG`) is not enough on its own: it reaches only the shell that
was forked (not the command's own children, which the shell forks in turn), and it fires when the *thread*
that forked exits, so a command started from a worker thread of a parallel branch would be killed when that
thread ends, and one started from a thread that lives on would survive the process. Instead, the first
command a process starts also starts one watchdog for that process:

- the watchdog reads a pipe whose only write end the driver holds (non-inheritable: no command gets a copy).
  The kernel closes it when the driver dies, however it dies (`kill -9`, the OOM killer, a crash), so the
  watchdog sees end-of-file at once;
- before a command starts, the driver writes `start TOKEN`; once it runs, `pgid TOKEN PGID`; when it has
  ended, `end TOKEN`. Every command carries `PLAYBOOK_NB_ATTEMPT_TOKEN=TOKEN` in its environment, inherited by
  everything it starts;
- at end-of-file the watchdog stops every command still registered: SIGTERM to its process group and to every
  process whose environment carries a live token (which also finds a process that left the group, and one
  started in the instant before its group was registered), then SIGKILL to what is left after a short grace.

The watchdog is the standard-library script below, run with `python -I -S` in a session of its own (so a
Ctrl-C in the terminal does not reach it); it costs one process per driver, started once.
"""

from __future__ import annotations

import contextlib
import os
import subprocess
import sys
import threading

TOKEN_ENV = "PLAYBOOK_NB_ATTEMPT_TOKEN"
KILL_GRACE = 0.3  # seconds between SIGTERM and SIGKILL once the driver is gone

WATCHDOG = r"""
import os, select, signal, sys, time

MARK = sys.argv[1].encode() + b"="
GRACE = float(sys.argv[2])
for sig in (signal.SIGINT, signal.SIGHUP, signal.SIGPIPE):
    signal.signal(sig, signal.SIG_IGN)
live = {}  # token -> pgid, or None before the command's group is known
buf = b""
while True:
    try:
        data = os.read(0, 65536)
    except InterruptedError:
        continue
    if not data:  # the driver is gone
        break
    *lines, buf = (buf + data).split(b"\n")
    for line in lines:
        parts = line.split()
        if len(parts) == 2 and parts[0] == b"start":
            live.setdefault(parts[1], None)
        elif len(parts) == 3 and parts[0] == b"pgid":
            live[parts[1]] = int(parts[2])
        elif len(parts) == 2 and parts[0] == b"end":
            live.pop(parts[1], None)


def tagged():
    marks = {MARK + token for token in live}
    for entry in os.listdir("/proc"):
        if entry.isdigit() and int(entry) != os.getpid():
            try:
                with open("/proc/" + entry + "/environ", "rb") as fh:
                    if marks.intersection(fh.read().split(b"\0")):
                        yield int(entry)
            except OSError:
                pass


def stop(sig):
    own_group = os.getpgid(0)
    pids = list(tagged())
    groups = {pgid for pgid in live.values() if pgid}
    for pid in pids:
        try:
            groups.add(os.getpgid(pid))
        except OSError:
            pass
    for pgid in groups - {0, 1, own_group}:
        try:
            os.killpg(pgid, sig)
        except OSError:
            pass
    for pid in pids:
        try:
            os.kill(pid, sig)
        except OSError:
            pass


if live:
    stop(signal.SIGTERM)
    time.sleep(GRACE)
    stop(signal.SIGKILL)
"""


class Tether:
    """The watchdog of this process (see the module docstring). One per process; thread-safe."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._write_fd: int | None = None
        self._proc: subprocess.Popen | None = None
        self._owner_pid: int | None = None
        self.failed: str | None = None  # why no watchdog could be started (commands still run)

    def _ensure(self) -> int | None:
        """The pipe to this process's watchdog, started on first use (again after a fork)."""
        if self._write_fd is not None and self._owner_pid == os.getpid():
            return self._write_fd
        if self.failed is not None and self._owner_pid == os.getpid():
            return None
        self._owner_pid = os.getpid()
        read_fd, write_fd = os.pipe()  # both non-inheritable (PEP 446): commands never hold the write end
        try:
            self._proc = subprocess.Popen(
                [sys.executable, "-I", "-S", "-c", WATCHDOG, TOKEN_ENV, str(KILL_GRACE)],
                stdin=read_fd,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
                start_new_session=True,
                close_fds=True,
            )
        except OSError as err:
            os.close(write_fd)
            self.failed = f"cannot start the command watchdog: {err}"
            return None
        finally:
            os.close(read_fd)
        self._write_fd = write_fd
        return write_fd

    def _send(self, line: str) -> None:
        with self._lock:
            fd = self._ensure()
            if fd is None:
                return
            try:
                os.write(fd, line.encode() + b"\n")  # short writes to a pipe are atomic
            except OSError as err:
                self.failed = f"the command watchdog is gone: {err}"
                with contextlib.suppress(OSError):
                    os.close(fd)
                self._write_fd = None

    def new_token(self, token: str | None = None) -> str:
        """Announce a command about to start (under `token`, made here when not given: the caller may have
        recorded it with the attempt already); put the token in its environment under TOKEN_ENV."""
        if token is None:
            token = os.urandom(16).hex()  # 32 hex digits, as uuid4().hex gave, without building a UUID
        self._send(f"start {token}")
        return token

    def started(self, token: str, pgid: int) -> None:
        self._send(f"pgid {token} {int(pgid)}")

    def ended(self, token: str) -> None:
        self._send(f"end {token}")


def tagged_processes(token: str) -> list[int]:
    """The pids of this host whose environment carries `token` under TOKEN_ENV (what the watchdog looks for
    too, in its own standard-library copy of this loop)."""
    mark = f"{TOKEN_ENV}={token}".encode()
    found: list[int] = []
    try:
        entries = os.listdir("/proc")
    except OSError:
        return found
    for entry in entries:
        if not entry.isdigit() or int(entry) == os.getpid():
            continue
        try:
            with open(f"/proc/{entry}/environ", "rb") as fh:
                if mark in fh.read().split(b"\0"):
                    found.append(int(entry))
        except OSError:
            continue
    return found


_TETHER: Tether | None = None
_TETHER_LOCK = threading.Lock()


def process_tether() -> Tether:
    """The one watchdog tether of this process (a new one in a forked child)."""
    global _TETHER
    with _TETHER_LOCK:
        if _TETHER is None or _TETHER._owner_pid not in (None, os.getpid()):
            _TETHER = Tether()
        return _TETHER
