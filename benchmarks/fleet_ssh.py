"""Fleet steps (issue 21): 50 hosts x a trivial command (`true`), batch 10, in one run, three ways:

- playbook-nb's fleet executor (`run_fleet`: asyncssh, 10 hosts at a time, a pty per host);
- a sequential loop of the OpenSSH client (`ssh host true`, one after the other), the baseline;
- `ansible all -f 10 -m ansible.builtin.command -a true` over the same inventory.

The hosts are 50 loopback addresses served by real sshd processes (16 addresses each) with generated keys (tests/sshd_server.py). Host
keys are checked by all three (known_hosts). Each way runs `--repeat` times, alternating; medians are reported.

    .venv/bin/python benchmarks/fleet_ssh.py [--hosts 50] [--repeat 3]   # writes benchmarks/results/fleet.md
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
RESULTS = REPO / "benchmarks" / "results" / "fleet.md"
sys.path.insert(0, str(REPO / "tests"))

from sshd_server import sshd_fleet  # noqa: E402


def fleet_run(fleet, batch: int) -> float:
    from playbook_nb.adapters.executors.fleet import run_fleet
    from playbook_nb.adapters.executors.ssh import SshOptions
    from playbook_nb.domain.fleet import parse_targets

    options = SshOptions(
        identity_files=[str(fleet.user_key)], known_hosts=str(fleet.known_hosts), agent=False
    )
    began = time.perf_counter()
    result = run_fleet("true", parse_targets(fleet.hosts), batch=batch, options=options)
    elapsed = time.perf_counter() - began
    if not result.ok:
        raise RuntimeError(f"fleet run failed: {result.error}")
    return elapsed


def ssh_loop(fleet) -> float:
    began = time.perf_counter()
    for host in fleet.hosts:
        subprocess.run([*fleet.ssh_args(host), "true"], check=True, stdin=subprocess.DEVNULL)
    return time.perf_counter() - began


def ansible_run(fleet, inventory: Path, batch: int, env: dict[str, str]) -> float:
    ansible = Path(sys.executable).parent / "ansible"
    began = time.perf_counter()
    done = subprocess.run(
        [
            str(ansible),
            "all",
            "-i",
            str(inventory),
            "-f",
            str(batch),
            "-m",
            "ansible.builtin.command",
            "-a",
            "true",
        ],
        capture_output=True,
        text=True,
        env=env,
    )
    elapsed = time.perf_counter() - began
    if done.returncode != 0:
        raise RuntimeError(f"ansible failed: {done.stdout[-800:]} {done.stderr[-800:]}")
    return elapsed


def measure(hosts: int = 50, batch: int = 10, repeat: int = 3) -> dict[str, float]:
    from playbook_nb.adapters.executors.ansible import write_inventory
    from playbook_nb.adapters.executors.ssh import SshOptions
    from playbook_nb.domain.fleet import parse_targets

    times: dict[str, list[float]] = {"fleet": [], "ssh_loop": [], "ansible": []}
    with sshd_fleet(hosts) as fleet, tempfile.TemporaryDirectory() as tmp:
        inventory = Path(tmp) / "inventory.json"
        options = SshOptions(identity_files=[str(fleet.user_key)], known_hosts=str(fleet.known_hosts))
        write_inventory(inventory, parse_targets(fleet.hosts), options)
        env = {
            **os.environ,
            "ANSIBLE_HOST_KEY_CHECKING": "True",
            "ANSIBLE_SSH_ARGS": "-o ControlMaster=no",
            "ANSIBLE_HOME": str(Path(tmp) / "ansible-home"),
            "ANSIBLE_PYTHON_INTERPRETER": "/usr/bin/python3",
        }
        fleet_run(fleet, batch)  # warm-up: imports, first handshakes
        for _ in range(repeat):
            times["fleet"].append(fleet_run(fleet, batch))
            times["ssh_loop"].append(ssh_loop(fleet))
            times["ansible"].append(ansible_run(fleet, inventory, batch, env))
    return {name: statistics.median(values) for name, values in times.items()}


def write_results(hosts: int, batch: int, repeat: int, medians: dict[str, float]) -> str:
    fleet, loop, ansible = medians["fleet"], medians["ssh_loop"], medians["ansible"]
    text = (
        f"# Fleet steps: {hosts} hosts x `true`, batch {batch}\n\n"
        f"Medians of {repeat} alternating repetitions in one run; real sshd processes on {hosts} loopback addresses, "
        f"host keys checked by all three. Python {platform.python_version()}, {os.cpu_count()} cores, load average "
        "{:.1f} {:.1f} {:.1f} at the end (other work shared the CPUs when above the core count).\n\n".format(
            *os.getloadavg()
        )
        + "| way | seconds | speed vs the sequential ssh loop |\n|---|---|---|\n"
        f"| playbook-nb fleet executor (asyncssh, batch {batch}) | {fleet:.2f} | {loop / fleet:.2f}x |\n"
        f"| sequential `ssh host true` loop (baseline) | {loop:.2f} | 1.00x |\n"
        f"| `ansible all -f {batch} -m command -a true` | {ansible:.2f} | {loop / ansible:.2f}x |\n\n"
        f"playbook-nb is {ansible / fleet:.1f}x faster than `ansible -f {batch}` on the same hosts.\n"
    )
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(text)
    return text


def run(quick: bool, workdir: Path) -> list:
    """The row for benchmarks/run_all (quick: 10 hosts, one repetition)."""
    from bench_common import Row

    hosts, batch, repeat = (10, 10, 1) if quick else (50, 10, 3)
    medians = measure(hosts, batch, repeat)
    write_results(hosts, batch, repeat, medians)
    fleet, loop, ansible = medians["fleet"], medians["ssh_loop"], medians["ansible"]
    return [
        Row(
            f"fleet step, {hosts} hosts x `true`, batch {batch} (real sshd)",
            f"{fleet:.2f} s: {loop / fleet:.1f}x the speed of the ssh loop, {ansible / fleet:.1f}x of ansible",
            f"sequential `ssh` loop: {loop:.2f} s; `ansible -f {batch}`: {ansible:.2f} s",
            "",
            None,
            f"medians of {repeat}; host keys checked by all three",
        )
    ]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--hosts", type=int, default=50)
    parser.add_argument("--batch", type=int, default=10)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    medians = measure(args.hosts, args.batch, args.repeat)
    print(write_results(args.hosts, args.batch, args.repeat, medians))


if __name__ == "__main__":
    main()
