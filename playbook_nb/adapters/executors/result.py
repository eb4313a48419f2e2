"""The outcome of one node attempt, whatever the executor that produced it."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any


def _json_safe(value: Any) -> Any:
    """`value` itself when it survives a JSON round trip unchanged in meaning, else its `repr()`."""
    try:
        json.dumps(value, allow_nan=False)
    except (TypeError, ValueError, OverflowError, RecursionError):
        return repr(value)
    return value


@dataclass
class AttemptResult:
    ok: bool
    exit_code: int | None = None
    stdout: str = ""
    stderr: str = ""
    return_value: Any = None
    error: str | None = None  # one line for the user, e.g. "exit code 2", "ValueError: bad input"
    started_at: float = 0.0  # wall clock, seconds since the epoch
    ended_at: float = 0.0
    truncated: bool = False  # stdout or stderr lost bytes to the capture bound

    @property
    def duration(self) -> float:
        """Seconds between start and end (0.0 when either is unknown)."""
        if not self.started_at or not self.ended_at:
            return 0.0
        return max(0.0, self.ended_at - self.started_at)

    def to_dict(self) -> dict[str, Any]:
        """A JSON-safe dict (the return value falls back to its `repr()`)."""
        return {
            "ok": self.ok,
            "exit_code": self.exit_code,
            "stdout": self.stdout,
            "stderr": self.stderr,
            "return_value": _json_safe(self.return_value),
            "error": self.error,
            "started_at": self.started_at,
            "ended_at": self.ended_at,
            "duration": self.duration,
            "truncated": self.truncated,
        }
