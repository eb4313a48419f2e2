"""Start-up of the commands a user types most, against the imports each cannot avoid (issue 18.1).

    python benchmarks/bench_startup.py            # prints the ratios (medians of 15 alternated runs)
    python benchmarks/bench_startup.py --quick    # medians of 3

Each command is a whole process (`python -m playbook_nb ...`: interpreter, imports, the command's work),
alternated with its floor, the same interpreter importing only what that command needs anyway:

- `--help`, `runs list`, `show N`: `python -c 'import typer, rich, sqlite3'` (target: within 1.5x);
- `validate` of a 3-node runbook: `python -c 'import typer, rich, tomllib, networkx, jinja2.sandbox'`
  (target: within 1.3x).

Medians of alternated runs, so a change of load hits both sides alike. Two figures each: the wall time, and
the CPU time of the child process (user + system, from getrusage): on a loaded machine the wall time mostly
measures the wait for a core, while the CPU time is what the process itself costs; the ratio is taken on
the CPU time. PYTHONDONTWRITEBYTECODE is removed from the children's environment (an installed package
loads from its bytecode; compiling every module at each start would double the figure). The index read by `runs list` and `show` holds 20 runs of a 3-node runbook, recorded by
`playbook-nb run` beforehand.

`runs list` and `show` are measured twice: writing to a pipe (the figure the target is for: a script, a CI
log, `| less`), where their tables are written as strings without Rich's console, and on a terminal (a pty),
where they are written with their colours, the same characters and codes Rich would write, still without
Rich's console (faces/cli/ansi.py; Rich draws what does not fit the terminal).
"""

from __future__ import annotations

import resource
import statistics
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_common import Row, chain_runbook, cli_env

BASE_READ = "import typer, rich, sqlite3"
BASE_VALIDATE = "import typer, rich, tomllib, networkx, jinja2.sandbox"


def _cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def _time(argv: list[str], env: dict[str, str]) -> tuple[float, float]:
    """(wall seconds, CPU seconds) of one whole process."""
    cpu = _cpu()
    start = time.perf_counter()
    proc = subprocess.run(argv, capture_output=True, text=True, env=env, stdin=subprocess.DEVNULL)
    took = time.perf_counter() - start
    if proc.returncode != 0:
        raise RuntimeError(f"{' '.join(argv)} exited {proc.returncode}: {proc.stderr.strip()[-400:]}")
    return took, _cpu() - cpu


def _time_on_a_terminal(argv: list[str], env: dict[str, str]) -> tuple[float, float]:
    """(wall seconds, CPU seconds) of one whole process whose stdout and stderr are a terminal (a pty of 200
    columns, read as it writes): there the tables and lines have their colours, as a user sees them."""
    import fcntl
    import os
    import pty
    import struct
    import termios
    import threading

    master, slave = pty.openpty()
    fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", 50, 200, 0, 0))
    chunks: list[bytes] = []

    def drain() -> None:
        while True:
            try:
                data = os.read(master, 65536)
            except OSError:  # the child closed the terminal
                return
            if not data:
                return
            chunks.append(data)

    reader = threading.Thread(target=drain, daemon=True)
    reader.start()
    terminal_env = {k: v for k, v in env.items() if k not in ("NO_COLOR", "COLUMNS", "TERM")} | {
        "TERM": "xterm"
    }
    cpu = _cpu()
    start = time.perf_counter()
    try:
        proc = subprocess.run(argv, stdin=subprocess.DEVNULL, stdout=slave, stderr=slave, env=terminal_env)
    finally:
        took = time.perf_counter() - start
        os.close(slave)
        reader.join(timeout=10)
        os.close(master)
    if proc.returncode != 0:
        raise RuntimeError(f"{' '.join(argv)} exited {proc.returncode}: {b''.join(chunks)[-400:]!r}")
    if b"\x1b[" not in b"".join(chunks):
        raise RuntimeError(f"{' '.join(argv)} wrote no terminal codes on a terminal")
    return took, _cpu() - cpu


def measure(quick: bool, workdir: Path) -> list[dict]:
    """The medians of every command and both floors; one dict per command."""
    workdir.mkdir(parents=True, exist_ok=True)
    db = workdir / "startup-index.db"
    book = workdir / "three.toml"
    book.write_text(chain_runbook(3, title="startup bench"))
    env = cli_env(PLAYBOOK_DB_PATH=str(db))
    env.pop("PYTHONDONTWRITEBYTECODE", None)  # as on a user's machine: modules load from their bytecode
    py = sys.executable
    cli = [py, "-m", "playbook_nb"]
    for _ in range(20):
        _time([*cli, "run", str(book), "--state-path", str(db)], env)
    commands = {
        "playbook-nb --help": ([*cli, "--help"], BASE_READ, 1.5),
        "playbook-nb runs list": ([*cli, "runs", "list", "--state-path", str(db)], BASE_READ, 1.5),
        "playbook-nb show N": ([*cli, "show", "7", "--state-path", str(db)], BASE_READ, 1.5),
        "playbook-nb validate (3 nodes)": ([*cli, "validate", str(book)], BASE_VALIDATE, 1.3),
    }
    # Off a terminal (above: a pipe, as in a script or CI log) runs list and show write their tables as
    # strings; on a terminal they are written with their colours (faces/cli/ansi.py, Rich for what it does
    # not draw): measured too.
    on_a_terminal = {
        "playbook-nb runs list, on a terminal": commands["playbook-nb runs list"],
        "playbook-nb show N, on a terminal": commands["playbook-nb show N"],
    }
    floors = {BASE_READ: [py, "-c", BASE_READ], BASE_VALIDATE: [py, "-c", BASE_VALIDATE]}
    repeat = 3 if quick else 15
    samples: dict[str, list[tuple[float, float]]] = {
        name: [] for name in [*commands, *on_a_terminal, *floors]
    }
    for argv in [*(c[0] for c in commands.values()), *floors.values()]:  # warm the file cache once
        _time(argv, env)
    for _ in range(repeat):
        for name, (argv, _floor, _target) in commands.items():
            samples[name].append(_time(argv, env))
        for name, (argv, _floor, _target) in on_a_terminal.items():
            samples[name].append(_time_on_a_terminal(argv, env))
        for name, argv in floors.items():
            samples[name].append(_time(argv, env))
    commands = {**commands, **on_a_terminal}
    wall = {name: statistics.median(w for w, _c in values) for name, values in samples.items()}
    cpu = {name: statistics.median(c for _w, c in values) for name, values in samples.items()}
    return [
        {
            "command": name,
            "seconds": wall[name],
            "cpu": cpu[name],
            "floor": floor,
            "floor_seconds": wall[floor],
            "floor_cpu": cpu[floor],
            "ratio": cpu[name] / cpu[floor],
            "wall_ratio": wall[name] / wall[floor],
            "target": target,
            "repeat": repeat,
        }
        for name, (_argv, floor, target) in commands.items()
    ]


_WHERE = {
    "playbook-nb runs list": "; stdout a pipe: the table written as strings, no rich.console",
    "playbook-nb show N": "; stdout a pipe: lines and table written as strings, no rich.console",
    "playbook-nb runs list, on a terminal": "; a 200-column pty: the coloured table written as strings "
    "(faces/cli/ansi.py), no rich.console",
    "playbook-nb show N, on a terminal": "; a 200-column pty: the coloured lines and table written as strings, "
    "no rich.console",
}


def run(quick: bool, workdir: Path) -> list[Row]:
    rows = []
    for m in measure(quick, workdir / "startup"):
        rows.append(
            Row(
                measure=f"start-up: `{m['command'].replace('playbook-nb ', 'playbook-nb ')}` (whole process)",
                value=f"{m['ratio']:.2f}x ({m['cpu']:.3f} s CPU)",
                baseline=f"`python -c '{m['floor']}'`: {m['floor_cpu']:.3f} s CPU",
                target=f"<= {m['target']}x",
                met=m["ratio"] <= m["target"],
                note=f"medians of {m['repeat']} alternated runs; wall {m['seconds']:.3f} s vs "
                f"{m['floor_seconds']:.3f} s ({m['wall_ratio']:.2f}x)" + _WHERE.get(m["command"], ""),
            )
        )
    return rows


def main() -> int:
    import argparse
    import tempfile

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="playbook-nb-startup-") as tmp:
        results = measure(args.quick, Path(tmp))
    for m in results:
        verdict = "ok  " if m["ratio"] <= m["target"] else "MISS"
        print(
            f"{verdict} {m['command']:<32} CPU {m['cpu']:.3f} s  {m['ratio']:.2f}x [target {m['target']}x]"
            f"  vs `{m['floor']}` {m['floor_cpu']:.3f} s; wall {m['seconds']:.3f} s ({m['wall_ratio']:.2f}x)"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
