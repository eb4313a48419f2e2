"""Validate a generated 1000-node runbook (chains, fan-outs, variables, `when` conditions).

"validate" is what `playbook-nb validate FILE` does after start-up: `load_runbook` (TOML, fields,
dependencies, graph, templates) then `validate_runbook` (the checks again plus the warnings). Baseline:
`tomllib.loads` of the same text, timed in the same process. Every repetition starts cold, as a fresh
`playbook-nb validate` process would: the parsed-template caches (`templating.clear_caches()`) are emptied
first. The CLI's whole wall time (interpreter start-up and imports included) is reported beside it.
"""

from __future__ import annotations

import subprocess
import sys
import time
import tomllib
from pathlib import Path

from bench_common import Row, best_of, cli_env, mixed_runbook


def run(quick: bool, workdir: Path) -> list[Row]:
    from playbook_nb.app.inputs import load_runbook
    from playbook_nb.domain.templating import clear_caches
    from playbook_nb.domain.validation import validate_runbook

    text = mixed_runbook(1000)
    path = workdir / "validate_1000.playbook.toml"
    path.write_text(text)
    runbook = load_runbook(path)
    nodes = len(runbook.nodes)
    report = validate_runbook(runbook)
    if report.errors:
        raise RuntimeError(f"generated runbook is invalid: {report.errors[0]}")

    repeat = 2 if quick else 5
    toml_s = best_of(lambda: tomllib.loads(path.read_text()), repeat * 4)

    def validate_cold():
        clear_caches()
        validate_runbook(load_runbook(path))

    validate_s = best_of(validate_cold, repeat)
    cli_s = best_of(
        lambda: subprocess.run(
            [sys.executable, "-m", "playbook_nb", "validate", str(path)],
            env=cli_env(),
            capture_output=True,
            check=True,
        ),
        repeat,
    )
    start = time.perf_counter()
    subprocess.run([sys.executable, "-c", "import playbook_nb.faces.cli"], check=True)
    import_s = time.perf_counter() - start
    return [
        Row(
            f"validate a {nodes}-node runbook (in process)",
            f"{validate_s:.3f} s ({validate_s / toml_s:.0f}x tomllib)",
            f"tomllib.loads of the same {len(text) // 1024} KiB: {toml_s * 1000:.1f} ms",
            "< 0.5 s",
            validate_s < 0.5,
        ),
        Row(
            f"`playbook-nb validate` of the {nodes}-node runbook (whole process)",
            f"{cli_s:.3f} s",
            f"`python -c 'import playbook_nb.faces.cli'`: {import_s:.3f} s",
            "",
            None,
            "includes interpreter start-up and imports",
        ),
    ]
