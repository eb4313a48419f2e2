"""`playbook-nb` console script. Each command group lives in its own module and registers on `app`."""

from __future__ import annotations

import importlib
import sys

from playbook_nb.faces.cli.app import app, run_app

COMMAND_MODULES = [
    "model_cmds",  # validate, create, dag, export-dot
    "run_cmds",  # run, resume, set-status
    "approve_cmds",  # approve (a gate a run waits at, from anywhere)
    "runs_cmds",  # show, runs list, info
    "config_cmds",  # config
    "notebook_cmds",  # compile
    "export_cmds",  # export, scan, verify
    "ops_cmds",  # test (rehearsal, acceptance packs), replay
    "store_cmds",  # store info, store migrate
]

for _name in COMMAND_MODULES:
    importlib.import_module(f"playbook_nb.faces.cli.{_name}")


def main() -> None:
    sys.exit(run_app(sys.argv[1:]))


__all__ = ["app", "main"]
