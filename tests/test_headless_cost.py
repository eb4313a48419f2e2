"""A headless run pays only for what it uses (issue 18.3). The timings are in
benchmarks/headless_vs_nbclient.py (a ratio against bare nbclient, measured in the same run); here, what a
headless run's driver process leaves in `sys.modules` and what it still does."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap

import pytest


def _headless_in_process(book, db, tmp_path) -> tuple[set[str], str]:
    script = textwrap.dedent(
        f"""
        import json, sys
        from playbook_nb.faces.cli import run_app
        try:
            code = run_app(["run", {str(book)!r}, "--headless", "--state-path", {str(db)!r}])
        except SystemExit as stop:
            code = stop.code
        assert code == 0, code
        print("MODULES=" + json.dumps(sorted(sys.modules)))
        import rfc3987_syntax  # still importable by whoever asks for it
        print("IMPORTED", rfc3987_syntax.__name__)
        """
    )
    proc = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, cwd=tmp_path, timeout=300
    )
    assert proc.returncode == 0, proc.stderr
    line = next(x for x in proc.stdout.splitlines() if x.startswith("MODULES="))
    return set(json.loads(line.removeprefix("MODULES="))), proc.stdout


def test_a_headless_run_builds_no_iri_grammar_loads_no_boto3_and_still_files_a_valid_record(tmp_path):
    pytest.importorskip("rfc3987_syntax")  # jsonschema's optional module whose grammars cost 0.8 s to build
    book = tmp_path / "two.playbook.toml"
    book.write_text(
        '[runbook]\ntitle = "two"\n\n[a]\ntype = "Command"\ncommand_name = "echo one"\n\n'
        '[b]\ntype = "Command"\ncommand_name = "echo two"\ndepends_on = ["a"]\n'
    )
    db = tmp_path / "index.db"
    loaded, stdout = _headless_in_process(book, db, tmp_path)
    assert "run 1 OK" in stdout
    assert "nbformat" in loaded and "jsonschema" in loaded  # the record was written and validated
    assert "rfc3987_syntax" not in loaded and "lark" not in loaded
    assert "isoduration" not in loaded and "webcolors" not in loaded  # jsonschema's other format modules
    assert "IMPORTED rfc3987_syntax" in stdout  # hidden from jsonschema only, not from the process
    assert "papermill" in loaded and "boto3" not in loaded  # papermill's S3 handler is not loaded
    import nbformat

    nb = nbformat.read(next(tmp_path.rglob("notebook.ipynb")), as_version=4)
    nbformat.validate(nb)
    outputs = "".join(
        o.get("text", "") for c in nb.cells if c.cell_type == "code" for o in c.get("outputs", [])
    )
    assert "one\n" in outputs and "two\n" in outputs


def test_in_a_kernel_jsonschema_keeps_every_format_check(tmp_path):
    """A kernel runs the user's code too: importing nbformat through light_nbformat there hides nothing, so
    jsonschema's format checker still checks IRIs and durations (when their modules are installed)."""
    pytest.importorskip("rfc3987_syntax")
    pytest.importorskip("isoduration")
    script = textwrap.dedent(
        """
        import sys
        import ipykernel.kernelapp  # noqa: F401  (what a kernel has loaded)
        assert "jsonschema" not in sys.modules
        from playbook_nb.adapters.notebook.light_nbformat import nbformat  # noqa: F401
        import jsonschema
        checker = jsonschema.FormatChecker()
        print("CHECKS", "iri" in checker.checkers, "duration" in checker.checkers)
        """
    )
    proc = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, cwd=tmp_path, timeout=120
    )
    assert proc.returncode == 0, proc.stderr
    assert "CHECKS True True" in proc.stdout
