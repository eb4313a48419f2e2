"""One command on one host over SSH (asyncssh), for fleet steps.

- Authentication: the SSH agent (`SSH_AUTH_SOCK`) and key files (`identity_files`, else asyncssh's defaults
  `~/.ssh/id_*`); `~/.ssh/config` is read as OpenSSH would.
- Host keys are checked against `known_hosts` (`~/.ssh/known_hosts` unless a file is named). An unknown or
  changed key fails the host with a line saying so; nothing is ever accepted silently.
- The remote command runs on a pty, so closing the channel or losing the connection (a timeout, Abort, the
  driver killed) hangs the terminal up and the kernel sends SIGHUP to the remote command's process group.
- Nothing of the command or its environment is on an argument list, here or on the host: the remote argv is
  a fixed bootstrap that reads the environment (`export NAME='value'` lines, secrets included) and the command
  from the pty, with echo, line editing and signal characters turned off, then `eval`s them.
"""

from __future__ import annotations

import asyncio
import contextlib
import getpass
import secrets
import shlex
from collections.abc import Awaitable, Callable, Mapping

from playbook_nb.adapters.executors.capture import BoundedCapture
from playbook_nb.domain.fleet import HostResult, HostState, SshOptions, Target

# A pty without echo, line editing, signal characters, flow control or CR/NL translation: the bootstrap reads
# its input byte for byte, and the output is the command's own bytes.
try:
    import asyncssh

    TERM_MODES = {
        asyncssh.PTY_ECHO: 0,
        asyncssh.PTY_ICANON: 0,
        asyncssh.PTY_ISIG: 0,
        asyncssh.PTY_IEXTEN: 0,
        asyncssh.PTY_IXON: 0,
        asyncssh.PTY_ICRNL: 0,
        asyncssh.PTY_OPOST: 0,
        asyncssh.PTY_ONLCR: 0,
    }
except ImportError:  # pragma: no cover - asyncssh is a dependency; this keeps `import` of the package cheap
    asyncssh = None  # type: ignore[assignment]
    TERM_MODES = {}

# Reads lines until the end marker (its first argument), stops reading the pty (the command's stdin is
# /dev/null, as for local commands), then runs what it read. It stays a child of the pty's session, so a
# hang-up reaches it and everything it started.
BOOTSTRAP = (
    "exec /bin/sh -c '"
    'e=$1; s=; while IFS= read -r l; do [ "$l" = "$e" ] && break; s="$s$l\n"; done; '
    'exec </dev/null; eval "$s"'
    "' playbook-nb"
)


def payload(command: str, env: Mapping[str, str], end: str) -> bytes:
    lines = [f"export {name}={shlex.quote(str(value))}" for name, value in env.items()]
    lines.append(command)
    lines.append(end)
    return ("\n".join(lines) + "\n").encode("utf-8")


def _describe(err: BaseException, target: Target, options: SshOptions, user: str) -> str:
    where = f"{user}@{target.address}:{target.port or options.port or 22}"
    if asyncssh is not None and isinstance(err, asyncssh.HostKeyNotVerifiable):
        known = options.known_hosts or "~/.ssh/known_hosts"
        return (
            f"host key of {target.text} not trusted ({err.reason}): it is not in {known} with this key; "
            "check it and add it there (ssh-keyscan) before running again"
        )
    if asyncssh is not None and isinstance(err, asyncssh.PermissionDenied):
        return f"ssh authentication failed for {where} (agent and key files refused)"
    if isinstance(err, ConnectionRefusedError):
        return f"unreachable: {where} refused the connection"
    if isinstance(err, TimeoutError):
        return f"unreachable: no answer from {where} within {options.connect_timeout:g} seconds"
    if isinstance(err, OSError):
        return f"unreachable: {where}: {err.strerror or err}"
    if asyncssh is not None and isinstance(err, asyncssh.Error):
        return f"ssh error with {where}: {err.reason}"
    return f"ssh error with {where}: {type(err).__name__}: {err}"


async def run_on_host(
    target: Target,
    command: str,
    *,
    options: SshOptions,
    env: Mapping[str, str],
    timeout: float | None,
    on_output: Callable[[str], Awaitable[None] | None] | None = None,
    max_output_bytes: int = 64 * 1024,
) -> HostResult:
    """Connect, run `command` on a pty, return what happened. Never raises for a host problem."""
    if asyncssh is None:  # pragma: no cover
        raise RuntimeError("asyncssh is not installed (pip install asyncssh)")
    loop = asyncio.get_running_loop()
    started = loop.time()
    wall_start = _wall()
    # an unset user is left to ~/.ssh/config, then the local user, as OpenSSH does
    given = target.user or options.user
    user = given or getpass.getuser()
    capture = BoundedCapture(max_output_bytes)
    result = HostResult(host=target.text, state=HostState.RUNNING, started_at=wall_start)
    conn = None
    try:
        async with asyncio.timeout(timeout):
            try:
                conn = await asyncio.wait_for(
                    asyncssh.connect(
                        target.address,
                        port=target.port or options.port or (),
                        username=given or (),
                        known_hosts=options.known_hosts if options.known_hosts else (),
                        client_keys=list(options.identity_files) or (),
                        agent_path=() if options.agent else None,
                        connect_timeout=options.connect_timeout,
                        login_timeout=options.connect_timeout,
                    ),
                    options.connect_timeout + 1,
                )
            except (OSError, asyncssh.Error, TimeoutError) as err:
                result.state, result.error = HostState.NOK, _describe(err, target, options, user)
                return result
            end = "playbook-nb-end-" + secrets.token_hex(16)
            process = await conn.create_process(
                BOOTSTRAP + " " + shlex.quote(end),
                term_type="dumb",
                term_modes=TERM_MODES,
                encoding=None,
            )
            process.stdin.write(payload(command, env, end))
            while True:
                data = await process.stdout.read(65536)
                if not data:
                    break
                capture.add(data)
                if on_output is not None:
                    maybe = on_output(data.decode("utf-8", "replace"))
                    if maybe is not None:
                        await maybe
            completed = await process.wait(check=False)
        result.exit_code = completed.exit_status if completed.exit_status is not None else None
        if completed.exit_signal:
            result.exit_code = None
            result.error = f"killed by signal {completed.exit_signal[0]} on the host"
        elif result.exit_code == 0:
            result.error = None
        else:
            result.error = f"exit code {result.exit_code}"
        result.state = HostState.OK if result.error is None else HostState.NOK
    except TimeoutError:
        result.state = HostState.NOK
        result.exit_code = None
        result.error = (
            f"timed out after {timeout:g} seconds (connection closed: the remote command was hung up)"
        )
    finally:
        if conn is not None:
            conn.close()
            # wait_closed can hang on a peer that stopped answering; the socket is closed either way
            with contextlib.suppress(Exception):
                await asyncio.wait_for(conn.wait_closed(), 2)
        result.stdout = capture.text()
        result.ended_at = wall_start + (loop.time() - started)
    return result


def _wall() -> float:
    import time

    return time.time()
