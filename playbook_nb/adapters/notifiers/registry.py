"""Notifiers by name: the built-in ones, plus the `playbook.notifiers` entry-point group (a package registers
`name = "module:Class"`; the class is built with the options of its `[notify]` entry)."""

from __future__ import annotations

from importlib.metadata import entry_points
from typing import Any

from playbook_nb.adapters.notifiers.webhook import SlackNotifier, WebhookNotifier

ENTRY_POINT_GROUP = "playbook.notifiers"
BUILTIN: dict[str, type] = {"webhook": WebhookNotifier, "slack": SlackNotifier}


def notifier_classes() -> dict[str, Any]:
    found: dict[str, Any] = dict(BUILTIN)
    for ep in entry_points(group=ENTRY_POINT_GROUP):
        if ep.name not in found:
            found[ep.name] = ep
    return found


def build_notifier(kind: str, options: dict[str, Any]):
    """The notifier `kind` built with `options`; ValueError naming the problem (unknown kind, bad options)."""
    classes = notifier_classes()
    if kind not in classes:
        raise ValueError(f"unknown notifier {kind!r} (known: {', '.join(sorted(classes))})")
    cls = classes[kind]
    if not isinstance(cls, type):
        cls = cls.load()
    try:
        return cls(**options)
    except TypeError as err:
        raise ValueError(f"notifier {kind}: {err}") from None
