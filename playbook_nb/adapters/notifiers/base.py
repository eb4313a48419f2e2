"""The notifier interface: one message out, or an exception saying why not (the caller retries and logs)."""

from __future__ import annotations

from typing import Any, Protocol


class Notifier(Protocol):
    """Built from its `[notify]` options (`Notifier(**options)`); `send` delivers one message or raises."""

    def send(self, message: dict[str, Any]) -> None: ...


class NotifierError(Exception):
    """A message could not be delivered (the one line the log shows; no URL secrets in it)."""
