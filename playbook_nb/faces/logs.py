"""Where the log records of a command go, from `[logging]` (and `PLAYBOOK_LOG_LEVEL`):

- `level`: the lowest level logged, for the `playbook_nb` loggers;
- stderr: on a terminal through Rich's handler, otherwise as plain lines ("2026-01-20 12:00:01 INFO
  playbook_nb.run: run 3 ended OK") a CI log keeps whole; while the level is the default (set by no file and
  no `PLAYBOOK_LOG_LEVEL`), stderr shows warnings and errors only: the terminal face tells the run itself;
- `file_path`: also a log file, rotated at `max_size_mb`, `backup_count` rotated files kept.

A filter masks well-known secret shapes and the `PLAYBOOK_SECRET_*` values in every record our handlers
write, whoever logged it.
"""

from __future__ import annotations

import logging
import sys
from typing import Any

PLAIN_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"
MB = 1024 * 1024
_OURS = "_playbook_nb_handler"


class _MaskSecrets(logging.Filter):
    def __init__(self) -> None:
        super().__init__()
        from playbook_nb.adapters.export.scan import secret_env_values
        from playbook_nb.domain.redact import Redactor

        self.redactor = Redactor(secret_env_values().values(), shapes=True)

    def filter(self, record: logging.LogRecord) -> bool:
        record.msg = self.redactor.redact(record.getMessage())
        record.args = None
        return True


def _stderr_handler() -> logging.Handler:
    try:
        on_terminal = sys.stderr.isatty()
    except (ValueError, AttributeError):
        on_terminal = False
    if on_terminal:
        from rich.console import Console
        from rich.logging import RichHandler

        return RichHandler(console=Console(stderr=True), show_path=False, markup=False, rich_tracebacks=False)
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter(PLAIN_FORMAT, "%Y-%m-%d %H:%M:%S"))
    return handler


def configure_logging(logging_config: Any, *, stderr: bool = True, level_explicit: bool = True) -> None:
    """Set up the `playbook_nb` loggers for this process from a `LoggingConfig` (level, file_path,
    max_size_mb, backup_count); `stderr=False`: the file only (a kernel, whose stderr is a cell's output).
    `level_explicit=False` (the level is the default): stderr shows warnings and errors only. Called again,
    it replaces the handlers it added before."""
    root = logging.getLogger("playbook_nb")
    for handler in [h for h in root.handlers if getattr(h, _OURS, False)]:
        root.removeHandler(handler)
        handler.close()
    root.setLevel(getattr(logging, str(logging_config.level).upper(), logging.INFO))
    root.propagate = False
    handlers = [_stderr_handler()] if stderr else []
    if handlers and not level_explicit:
        handlers[0].setLevel(logging.WARNING)
    if logging_config.file_path:
        from logging.handlers import RotatingFileHandler

        path = logging_config.file_path
        path.parent.mkdir(parents=True, exist_ok=True)
        rotating = RotatingFileHandler(
            path, maxBytes=int(logging_config.max_size_mb) * MB, backupCount=int(logging_config.backup_count)
        )
        rotating.setFormatter(logging.Formatter(PLAIN_FORMAT, "%Y-%m-%d %H:%M:%S"))
        handlers.append(rotating)
    mask = _MaskSecrets()
    for handler in handlers:
        setattr(handler, _OURS, True)
        handler.addFilter(mask)
        root.addHandler(handler)
