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
    kernel: str = typer.Option(
        None,
        "--kernel",
        help="The Jupyter kernel the notebook asks for (default python3; see `kernel install`).",
    ),
) -> None:
    """Compile a runbook into a notebook: a DAG widget plus one cell per node, runnable with papermill."""
    from playbook_nb.adapters.notebook.compile import compile_runbook, write_notebook
    from playbook_nb.adapters.notebook.kernels import kernelspec_of
    from playbook_nb.app.inputs import load_runbook

    runbook = load_runbook(file)  # a RunbookError is printed as one line by run_app (exit 2)
    kernelspec = kernelspec_of(kernel) if kernel else None
    target = output if output is not None else default_notebook_path(file)
    write_notebook(compile_runbook(runbook, source_path=str(file), kernelspec=kernelspec), target)
    console.print(f"wrote {target} ({len(runbook.nodes)} nodes)", highlight=False, soft_wrap=True)


kernel_app = typer.Typer(
    help="Jupyter kernels for runbook notebooks.", no_args_is_help=True, rich_markup_mode=app.rich_markup_mode
)
app.add_typer(kernel_app, name="kernel")


@kernel_app.command("install")
def kernel_install(
    name: str = typer.Option("playbook-nb", "--name", help="The kernel's name (what --kernel NAME takes)."),
    display_name: str = typer.Option(None, "--display-name", help="What JupyterLab's launcher shows."),
    user: bool = typer.Option(True, "--user/--sys-prefix", help="Install for this user, or into this env."),
    prefix: Path = typer.Option(None, "--prefix", help="Install under this prefix instead."),
) -> None:
    """Register a kernelspec that starts this environment's Python, where playbook-nb is installed."""
    import sys

    from playbook_nb.adapters.notebook.kernels import install_kernelspec

    where = install_kernelspec(
        name,
        display_name,
        user=user and prefix is None,
        prefix=str(prefix) if prefix is not None else (None if user else sys.prefix),
    )
    console.print(f"installed kernel {name} ({sys.executable}) in {where}", highlight=False, soft_wrap=True)
