"""A time to live or an age written as a number and a unit: `30d`, `12h`, `90m`.

Read by the configuration (`[runs] retention`) and by `runs prune --older-than`: one parser for both.
"""

from __future__ import annotations

import re
from datetime import timedelta

from playbook_nb.domain.errors import PlaybookError

_AGE = re.compile(r"^\s*(\d+)\s*([dhm])\s*$", re.IGNORECASE)
_UNITS = {"d": "days", "h": "hours", "m": "minutes"}


class AgeError(PlaybookError):
    """An age that is not a number and a unit d, h or m."""


def parse_age(text: str) -> timedelta:
    """`30d`, `12h`, `90m` -> timedelta."""
    match = _AGE.match(text or "")
    if not match:
        raise AgeError(f"--older-than {text!r}: expected a number and a unit d, h or m (30d, 12h, 90m)")
    return timedelta(**{_UNITS[match.group(2).lower()]: int(match.group(1))})
