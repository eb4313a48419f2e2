"""A real, throw-away OpenSSH server for the fleet tests and the benchmark (never a mock of ssh).

Debian's `openssh-server` (`/usr/sbin/sshd`, installed by scripts/test.sh when missing) runs in the
foreground as a child of the test, from a private directory holding a generated host key, a generated user key
and its `authorized_keys`. Each simulated host is its own loopback address (127.0.0.2, 127.0.0.3, ...) on its own
free port, all served by the one sshd; `known_hosts` lists every one of them with the generated host key, so
host keys are checked exactly as against a real fleet. A "down" host is an address and port nothing listens on.
OpenSSH listens on at most 16 sockets per process, so a larger fleet is served by several sshd processes.

Use `sshd_fleet(n)` as a context manager; the server is stopped (by its own pid) and its directory removed.
"""

from __future__ import annotations

import contextlib
import getpass
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

SSHD = os.environ.get("PLAYBOOK_NB_SSHD", "/usr/sbin/sshd")
MAX_LISTEN_SOCKS = 16  # OpenSSH's compile-time limit per sshd process


def sshd_available() -> bool:
    return Path(SSHD).is_file() and shutil.which("ssh-keygen") is not None


def _free_port(address: str) -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((address, 0))
        return s.getsockname()[1]


def _keygen(path: Path, comment: str) -> None:
    subprocess.run(
        ["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", comment, "-f", str(path)],
        check=True,
        capture_output=True,
    )


@dataclass
class SshFleet:
    """A running sshd serving `hosts` ("127.0.0.2:40022", ...) for `user` with `user_key`."""

    directory: Path
    hosts: list[str]
    user: str
    user_key: Path  # private key file (its .pub is in authorized_keys)
    known_hosts: Path
    processes: list[subprocess.Popen] = field(default_factory=list)
    spare: list[str] = field(default_factory=list)  # served too, but not in `hosts` (hosts that join later)

    def down_host(self) -> str:
        """An address and port nothing listens on: connecting there is refused, like a host that is down."""
        address = "127.0.0.250"
        return f"{address}:{_free_port(address)}"

    def ssh_args(self, host: str) -> list[str]:
        """The OpenSSH client's arguments for `host`, checking the host key against this fleet's known_hosts."""
        address, port = host.rsplit(":", 1)
        return [
            "ssh",
            "-q",
            "-p",
            port,
            "-i",
            str(self.user_key),
            "-o",
            "IdentitiesOnly=yes",
            "-o",
            f"UserKnownHostsFile={self.known_hosts}",
            "-o",
            "StrictHostKeyChecking=yes",
            "-o",
            "BatchMode=yes",
            f"{self.user}@{address}",
        ]

    def stop(self) -> None:
        processes, self.processes = self.processes, []
        for proc in processes:
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
        for proc in processes:
            try:
                proc.wait(10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        shutil.rmtree(self.directory, ignore_errors=True)


def start_fleet(count: int, *, spare: int = 0) -> SshFleet:
    """Start one sshd answering on `count + spare` loopback addresses; raises RuntimeError when it cannot."""
    if not sshd_available():
        raise FileNotFoundError(f"{SSHD} or ssh-keygen not found (apt-get install openssh-server)")
    directory = Path(tempfile.mkdtemp(prefix="playbook-nb-sshd-"))
    os.chmod(directory, 0o700)
    try:
        host_key = directory / "host_ed25519"
        user_key = directory / "user_ed25519"
        _keygen(host_key, "playbook-nb test host")
        _keygen(user_key, "playbook-nb test user")
        (directory / "authorized_keys").write_text(Path(f"{user_key}.pub").read_text())
        addresses = [f"127.0.0.{i + 2}" for i in range(count + spare)]
        hosts = [f"{address}:{_free_port(address)}" for address in addresses]
        host_pub = Path(f"{host_key}.pub").read_text().split()
        known = directory / "known_hosts"
        known.write_text(
            "".join(
                f"[{h.rsplit(':', 1)[0]}]:{h.rsplit(':', 1)[1]} {host_pub[0]} {host_pub[1]}\n" for h in hosts
            )
        )
        user = getpass.getuser()
        common = (
            f"HostKey {host_key}\n"
            + f"AuthorizedKeysFile {directory / 'authorized_keys'}\n"
            + f"AllowUsers {user}\n"
            + "PasswordAuthentication no\nKbdInteractiveAuthentication no\nPubkeyAuthentication yes\n"
            + "UsePAM no\nStrictModes no\nPermitRootLogin prohibit-password\nPrintMotd no\n"
            + "MaxStartups 200:30:300\nMaxSessions 100\nLogLevel ERROR\nSubsystem sftp internal-sftp\n"
        )
        if os.geteuid() == 0:
            os.makedirs("/run/sshd", mode=0o755, exist_ok=True)  # privilege separation directory
        processes = []
        for index in range(0, len(hosts), MAX_LISTEN_SOCKS):
            config = directory / f"sshd_config.{index}"
            config.write_text(
                "".join(f"ListenAddress {h}\n" for h in hosts[index : index + MAX_LISTEN_SOCKS])
                + f"PidFile {directory / f'sshd.{index}.pid'}\n"
                + common
            )
            log = open(directory / "sshd.log", "ab")  # noqa: SIM115 (the child keeps it open)
            processes.append(subprocess.Popen([SSHD, "-D", "-e", "-f", str(config)], stdout=log, stderr=log))
            log.close()
    except BaseException:
        for proc in locals().get("processes", []):
            proc.kill()
            proc.wait()
        shutil.rmtree(directory, ignore_errors=True)
        raise
    fleet = SshFleet(
        directory=directory,
        hosts=hosts[:count],
        user=user,
        user_key=user_key,
        known_hosts=known,
        processes=processes,
        spare=hosts[count:],
    )
    deadline = time.monotonic() + 15
    waiting = list(hosts)
    while waiting:
        dead = next((p for p in processes if p.poll() is not None), None)
        if dead is not None:
            text = (directory / "sshd.log").read_text(errors="replace")
            fleet.stop()
            raise RuntimeError(f"sshd exited with {dead.returncode}: {text.strip()[-500:]}")
        address, port = waiting[0].rsplit(":", 1)
        try:
            socket.create_connection((address, int(port)), timeout=1).close()
            waiting.pop(0)
        except OSError:
            if time.monotonic() > deadline:
                fleet.stop()
                raise RuntimeError(f"sshd does not answer on {waiting[0]}") from None
            time.sleep(0.05)
    return fleet


@contextlib.contextmanager
def sshd_fleet(count: int, *, spare: int = 0) -> Iterator[SshFleet]:
    fleet = start_fleet(count, spare=spare)
    try:
        yield fleet
    finally:
        fleet.stop()
