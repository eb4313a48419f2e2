"""Placeholder: commands registered here later."""

from playbook_nb.cli.app import app  # noqa: F401
