"""`compile`: a runbook -> a self-contained notebook (JupyterLab and papermill run the same file)."""

from __future__ import annotations

from pathlib import Path

import typer

from playbook_nb.faces.cli.app import app, console


def default_notebook_path(runbook_path: Path) -> Path:
    """`deploy.playbook.toml` -> `deploy.ipynb` beside it."""
    name = runbook_path.name
    for suffix in (".playbook.toml", ".toml"):
        if name.endswith(suffix):
            return runbook_path.with_name(name[: -len(suffix)] + ".ipynb")
    return runbook_path.with_name(name + ".ipynb")


@app.command("compile")
def compile_notebook(
    file: Path = typer.Argument(..., help="The runbook (.toml) to compile."),
    output: Path = typer.Option(
        None, "--output", "-o", help="Notebook to write (default: the runbook's name with .ipynb)."
    ),
) -> None:
    """Compile a runbook into a notebook: a DAG widget plus one cell per node, runnable with papermill."""
    from playbook_nb.adapters.notebook.compile import compile_runbook, write_notebook
    from playbook_nb.app.inputs import load_runbook

    runbook = load_runbook(file)  # a RunbookError is printed as one line by run_app (exit 2)
    target = output if output is not None else default_notebook_path(file)
    write_notebook(compile_runbook(runbook, source_path=str(file)), target)
    console.print(f"wrote {target} ({len(runbook.nodes)} nodes)", highlight=False, soft_wrap=True)
