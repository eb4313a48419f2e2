"""Command nodes: one shell command in its own process group, output streamed live and captured.

The command runs under `/bin/sh -c` in a new session (so a new process group whose id is the shell's pid).
Both pipes are read by one `selectors` loop on the caller's thread: lines reach `on_output` in the order they
arrive, always from the thread that called `run_command` (what an IPython kernel needs to route output
to the right cell), and the loop itself enforces the timeout and watches a cancel event. A timeout, a set
`cancel` event (Abort from another thread: a button, a signal handler, a storage fault), or an exception
such as KeyboardInterrupt (a kernel interrupt) while the command runs, terminates the whole group: SIGTERM,
then SIGKILL after a short grace.

Every command is registered with this process's watchdog (`tether`), so it dies with its driver even when
the driver is killed without a chance to clean up; `on_spawn(pgid)` tells the caller the group to record once
the command has run for REPORT_AFTER (the attempt's token, which the caller may record before the command
starts, finds its processes before that: `kill_tagged`).

Nothing here touches `sys.stdout` / `sys.stdin`, so it works the same from a worker thread or inside a kernel
whose streams are not real files.
"""

from __future__ import annotations

import codecs
import contextlib
import os
import selectors
import signal
import subprocess
import threading
import time
from collections.abc import Callable, Mapping

from playbook_nb.adapters.executors.capture import BoundedCapture, OutputCallback, safe_callback
from playbook_nb.adapters.executors.tether import TOKEN_ENV, process_tether, tagged_processes
from playbook_nb.adapters.store.owner import process_start
from playbook_nb.app.ports import AttemptResult, CommandEnv

TERM_GRACE = 1.0  # seconds between SIGTERM and SIGKILL on a timeout
DRAIN_GRACE = 1.0  # seconds to keep reading after the shell exited, if a background child holds the pipes
_READ_SIZE = 65536
_MAX_PENDING_LINE = 65536  # a "line" longer than this is handed to on_output in pieces
_POLL = 0.05
# a command still running after this long is reported to `on_spawn` (its group recorded); one that ends
# sooner is not: its whole record is then its start and its end, two transactions (issue 18.2)
REPORT_AFTER = _POLL


class _Stream:
    """One pipe: raw bytes into the bounded capture, decoded lines to the callback."""

    def __init__(self, name: str, limit: int, emit: OutputCallback | None):
        self.name = name
        self.capture = BoundedCapture(limit)
        self.emit = emit
        self.decoder = codecs.getincrementaldecoder("utf-8")("replace")
        self.pending = ""

    def feed(self, data: bytes) -> None:
        self.capture.add(data)
        if self.emit is None:
            return
        self.pending += self.decoder.decode(data)
        *lines, self.pending = self.pending.split("\n")
        for line in lines:
            self.emit(self.name, line + "\n")
        if len(self.pending) > _MAX_PENDING_LINE:
            self.emit(self.name, self.pending)
            self.pending = ""

    def close(self) -> None:
        if self.emit is None:
            return
        self.pending += self.decoder.decode(b"", final=True)
        if self.pending:
            self.emit(self.name, self.pending)
            self.pending = ""


def _group_alive(pgid: int) -> bool:
    """True while a process of the group is alive. Zombies do not count: where PID 1 does not reap orphans
    (some containers), `killpg(pgid, 0)` keeps succeeding on the dead children forever."""
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:
        entries = os.listdir("/proc")
    except OSError:
        return True  # no procfs: trust killpg
    for entry in entries:
        fields = _stat_fields(entry) if entry.isdigit() else None
        if fields is not None and len(fields) >= 3 and int(fields[2]) == pgid and fields[0] not in _DEAD:
            return True
    return False


_DEAD = (b"Z", b"X")  # a zombie, or dead: not alive for any of the checks here


def _stat_fields(pid: int | str) -> list[bytes] | None:
    """The fields of /proc/PID/stat after the command name (state, ppid, pgrp, ...); None when it is gone."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as fh:
            stat = fh.read()
    except OSError:
        return None
    # "pid (comm) state ppid pgrp ...": comm may hold spaces and parentheses, so split after the last ")".
    return stat[stat.rfind(b")") + 2 :].split()


def _signal_group(pgid: int, sig: int) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pgid, sig)


def kill_process_group(pgid: int, leader_start: int | None = None, grace: float = 1.0) -> bool:
    """Make sure a recorded process group is gone (recovering an orphaned run): SIGTERM, then SIGKILL after
    `grace` seconds. A group whose leader pid now belongs to another process (its start time differs) is
    left alone. True when something of the group was alive and was killed."""
    if pgid <= 1 or pgid == os.getpgid(0):
        return False
    started = process_start(pgid)
    if started is not None and leader_start is not None and started != int(leader_start):
        return False  # the pid was reused by an unrelated process
    if not _group_alive(pgid):
        return False
    _signal_group(pgid, signal.SIGTERM)
    end = time.monotonic() + grace
    while time.monotonic() < end and _group_alive(pgid):
        time.sleep(0.05)
    _signal_group(pgid, signal.SIGKILL)
    end = time.monotonic() + 2.0
    while time.monotonic() < end and _group_alive(pgid):
        time.sleep(0.05)
    return True


def kill_tagged(token: str, grace: float = 1.0) -> list[int]:
    """Make sure no process of this host carrying an attempt's `token` is left (recovering a run whose
    command had not been reported yet, or one that left its group): SIGTERM to each and to its group, SIGKILL
    to what is left after `grace` seconds. Returns the pids that were alive."""
    pids = tagged_processes(token)
    if not pids:
        return []
    own_group = os.getpgid(0)

    def stop(sig: int) -> None:
        for pid in tagged_processes(token):
            with contextlib.suppress(OSError):
                group = os.getpgid(pid)
                if group not in (0, 1, own_group):
                    os.killpg(group, sig)
            with contextlib.suppress(OSError):
                os.kill(pid, sig)

    stop(signal.SIGTERM)
    end = time.monotonic() + grace
    while time.monotonic() < end and _any_alive(pids):
        time.sleep(0.05)
    stop(signal.SIGKILL)
    end = time.monotonic() + 2.0
    while time.monotonic() < end and _any_alive(pids):
        time.sleep(0.05)
    return pids


def _any_alive(pids: list[int]) -> bool:
    """True while one of `pids` is a live process (a zombie does not count)."""
    for pid in pids:
        fields = _stat_fields(pid)
        if fields is not None and not (fields and fields[0] in _DEAD):
            return True
    return False


def _new_selector() -> selectors.BaseSelector:
    poll_selector = getattr(selectors, "PollSelector", None)
    return poll_selector() if poll_selector is not None else selectors.DefaultSelector()


def _format_seconds(seconds: float) -> str:
    return f"{seconds:g}"


class _Runner:
    def __init__(self, proc: subprocess.Popen, limit: int, on_output: OutputCallback | None):
        self.proc = proc
        self.pgid = proc.pid  # start_new_session: the shell leads its own group
        # poll(2) where there is one: two pipes for the life of one command need no epoll instance (its
        # creation, a registration call a pipe and its close cost four system calls a command; issue 18.2)
        self.selector = _new_selector()
        self.streams: dict[int, _Stream] = {}
        self.by_name: dict[str, _Stream] = {}
        emit = safe_callback(on_output)
        for name, pipe in (("stdout", proc.stdout), ("stderr", proc.stderr)):
            assert pipe is not None  # started with stdout and stderr piped
            stream = _Stream(name, limit, emit)
            self.by_name[name] = stream
            fd = pipe.fileno()
            self.streams[fd] = stream
            self.selector.register(fd, selectors.EVENT_READ)
        self.notes: list[str] = []

    @property
    def open_streams(self) -> bool:
        return bool(self.selector.get_map())

    def pump(self, wait: float) -> None:
        """Read what is available within `wait` seconds (or sleep that long when both pipes are closed)."""
        if not self.open_streams:
            with contextlib.suppress(subprocess.TimeoutExpired):
                self.proc.wait(wait)
            return
        for key, _ in self.selector.select(wait):
            fd = key.fd
            try:
                data = os.read(fd, _READ_SIZE)
            except OSError:
                data = b""
            if data:
                self.streams[fd].feed(data)
            else:
                self._close(fd)

    def _close(self, fd: int) -> None:
        self.selector.unregister(fd)
        self.streams[fd].close()

    def stop_reading(self) -> None:
        for fd in list(self.streams):
            if fd in self.selector.get_map():
                self._close(fd)
        self.selector.close()
        for pipe in (self.proc.stdout, self.proc.stderr):
            if pipe is not None:
                with contextlib.suppress(OSError):
                    pipe.close()

    def run(
        self,
        timeout: float | None,
        cancel: threading.Event | None = None,
        idle: Callable[[], None] | None = None,
        on_spawn: Callable[[int], None] | None = None,
    ) -> str | None:
        """Wait for the command; "timeout" or "cancelled" when it was stopped (the group is then
        terminated), None when it ended by itself. `idle()` is called about every _POLL seconds,
        `on_spawn(pgid)` once the command has run for REPORT_AFTER."""
        started = time.monotonic()
        deadline = None if timeout is None else started + max(0.0, timeout)
        exited_at: float | None = None
        idled_at = started
        while True:
            now = time.monotonic()
            if on_spawn is not None and exited_at is None and now - started >= REPORT_AFTER:
                report, on_spawn = on_spawn, None
                report(self.pgid)
            if idle is not None and now - idled_at >= _POLL:
                idle()
                idled_at = now = time.monotonic()
            if cancel is not None and cancel.is_set():
                self.terminate()
                return "cancelled"
            if exited_at is None and self.proc.poll() is not None:
                exited_at = now
            if exited_at is not None:
                if not self.open_streams:
                    return None
                if now - exited_at >= DRAIN_GRACE:
                    self.notes.append(
                        "[the command exited but a background process still holds its output open; "
                        "stopped reading]"
                    )
                    return None
            elif deadline is not None and now >= deadline:
                self.terminate()
                return "timeout"
            wait = _POLL if deadline is None else max(0.0, min(_POLL, deadline - now))
            self.pump(wait)

    def terminate(self) -> None:
        """SIGTERM to the whole group, SIGKILL to what is left after TERM_GRACE; keep reading meanwhile."""
        _signal_group(self.pgid, signal.SIGTERM)
        end = time.monotonic() + TERM_GRACE
        while time.monotonic() < end:
            self.proc.poll()  # reap the shell, or its zombie keeps the group alive
            if self.proc.returncode is not None and not _group_alive(self.pgid):
                break
            self.pump(_POLL)
        _signal_group(self.pgid, signal.SIGKILL)
        self.proc.wait()
        end = time.monotonic() + DRAIN_GRACE
        while self.open_streams and time.monotonic() < end:
            self.pump(_POLL)


def run_command(
    command: str,
    *,
    timeout: float | None,
    env: Mapping[str, str] | None = None,
    cwd: str | None = None,
    on_output: OutputCallback | None = None,
    max_output_bytes: int = 1_000_000,
    stdin_tty: bool = False,
    cancel: threading.Event | None = None,
    on_spawn: Callable[[int], None] | None = None,
    idle: Callable[[], None] | None = None,
    token: str | None = None,
) -> AttemptResult:
    """Run `command` with `/bin/sh -c` and return what happened.

    - `env`: the complete environment of the command (as with `subprocess`); None inherits this process's.
    - `on_output(stream, text)`: called on the caller's thread with `stream` "stdout" or "stderr" and one line
      of text including its "\\n" (a last line without newline, or a very long line, comes without it).
    - `max_output_bytes`: capture bound per stream; beyond it the head and the tail are kept around a
      "[... output truncated: N bytes dropped ...]" line and `truncated` is set; `on_output` sees it all.
    - `stdin_tty`: inherit this process's stdin (Command nodes with `interactive = true`); else /dev/null.
    - `timeout`: seconds; on expiry the whole process group is terminated, `ok` is False, `exit_code` None and
      `error` "Command timed out after N seconds".
    - `cancel`: when another thread sets it, the whole group is terminated; `interrupted` is True, `error`
      "interrupted" (the caller knows why and records it).
    - `on_spawn(pgid)`: called once the command has run for REPORT_AFTER seconds (not at all for one that
      ended sooner), with its process group id (recorded by the session, so whoever recovers an orphaned run
      can make sure the group is gone).
    - `token`: the watchdog token the command's processes carry (TOKEN_ENV), made here when not given; the
      session records it with the attempt's start, so a recovery finds the command's processes (`kill_tagged`)
      from the moment it starts.
    - `idle()`: called on this thread about every 50 ms while the command runs (the kernel face processes
      widget messages there, so an Abort click is seen while the cell waits).
    """
    started = time.time()
    tether = process_tether()
    token = tether.new_token(token)
    spawn_env: Mapping[str, str] | Mapping[bytes, bytes]
    if isinstance(env, CommandEnv):  # already in the kernel's bytes form: a copy, no decoding (issue 18.2)
        spawn_env = env.encoded(**{TOKEN_ENV: token})
    else:
        full_env = dict(os.environ if env is None else env)
        full_env[TOKEN_ENV] = token
        spawn_env = {str(k): str(v) for k, v in full_env.items()}
    try:
        proc = subprocess.Popen(
            ["/bin/sh", "-c", command],
            stdin=None if stdin_tty else subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            env=spawn_env,
            cwd=cwd,
            start_new_session=True,
        )
    except OSError as exc:
        tether.ended(token)
        return AttemptResult(
            ok=False, error=f"cannot start command: {exc}", started_at=started, ended_at=time.time()
        )
    tether.started(token, proc.pid)

    runner = _Runner(proc, max_output_bytes, on_output)
    try:
        stopped = runner.run(timeout, cancel, idle, on_spawn)
    except BaseException:
        # KeyboardInterrupt (kernel interrupt), a failing on_spawn or a bug: never leave the command behind.
        runner.terminate()
        raise
    finally:
        runner.stop_reading()
        tether.ended(token)
    ended = time.time()

    stdout = runner.by_name["stdout"].capture
    stderr = runner.by_name["stderr"].capture
    stderr_text = stderr.text()
    for note in runner.notes:
        stderr_text += ("" if not stderr_text or stderr_text.endswith("\n") else "\n") + note + "\n"

    if stopped == "timeout":
        error: str | None = f"Command timed out after {_format_seconds(timeout or 0)} seconds"
        exit_code = None
    elif stopped == "cancelled":
        error = "interrupted"
        exit_code = None
    else:
        exit_code = proc.returncode
        if exit_code == 0:
            error = None
        elif exit_code < 0:
            try:
                name = signal.Signals(-exit_code).name
            except ValueError:
                name = f"signal {-exit_code}"
            error = f"exit code {exit_code} (killed by {name})"
        else:
            error = f"exit code {exit_code}"
    return AttemptResult(
        ok=error is None,
        exit_code=exit_code,
        stdout=stdout.text(),
        stderr=stderr_text,
        error=error,
        started_at=started,
        ended_at=ended,
        truncated=stdout.truncated or stderr.truncated,
        interrupted=stopped == "cancelled",
    )
