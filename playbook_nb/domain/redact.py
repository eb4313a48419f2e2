"""Masking secret values in any text or structure before it is shown or stored."""

from __future__ import annotations

import json
import re
import shlex
from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING, Any

from playbook_nb.domain import secret_shapes

if TYPE_CHECKING:  # the runbook model costs its import; a listing of runs does not need it
    from playbook_nb.domain.model import Runbook

MASK = "********"
# Values this short are left alone: masking every "1", "no" or "ab" would shred ordinary output (exit
# codes, words) while the pattern of masks would give the value away anyway. A real secret is longer.
MIN_SECRET_LENGTH = 3


class Redactor:
    """Replaces every occurrence of the given secret values (and their shell-quoted, JSON-escaped and repr
    forms, the shapes they take in commands, records and tracebacks) with a mask; with `shapes=True` also
    every well-known secret shape nobody declared (cloud keys, tokens, private keys: `secret_shapes`)."""

    def __init__(self, secret_values: Iterable[Any], *, shapes: bool = False):
        self._forms: set[str] = set()
        self._pattern: re.Pattern[str] | None = None
        self.shapes = shapes
        self.add(secret_values)

    def add(self, secret_values: Iterable[Any]) -> None:
        """Mask these values too from now on (a run learns some secrets late: a plugin's secret parameter)."""
        before = len(self._forms)
        for value in secret_values:
            if value is None:
                continue
            text = str(value)
            if len(text) < MIN_SECRET_LENGTH:
                continue
            self._forms.update({text, shlex.quote(text), json.dumps(text)[1:-1], repr(text)[1:-1]})
        if len(self._forms) == before:
            return
        # Longest first, so a quoted form is replaced whole before the bare value inside it.
        ordered = sorted((f for f in self._forms if len(f) >= MIN_SECRET_LENGTH), key=len, reverse=True)
        self._pattern = re.compile("|".join(re.escape(f) for f in ordered)) if ordered else None

    def __bool__(self) -> bool:
        return self._pattern is not None or self.shapes

    def redact(self, text: str) -> str:
        if not isinstance(text, str):
            return text
        if self._pattern is not None:
            text = self._pattern.sub(MASK, text)
        if self.shapes and len(text) >= secret_shapes.MIN_SPAN:  # no shape is shorter (mask's own test)
            text = secret_shapes.mask(text, MASK)
        return text

    def redact_obj(self, obj: Any) -> Any:
        """A copy of `obj` with secrets masked in every string inside dicts, lists and tuples."""
        if isinstance(obj, str):
            return self.redact(obj)
        if obj is None or isinstance(obj, bool | int | float):  # the usual leaves, before Mapping's ABC check
            return obj
        if isinstance(obj, dict | Mapping):
            return {self.redact_obj(k): self.redact_obj(v) for k, v in obj.items()}
        if isinstance(obj, list):
            return [self.redact_obj(v) for v in obj]
        if isinstance(obj, tuple):
            return tuple(self.redact_obj(v) for v in obj)
        return obj


def mask_variables(values: Mapping[str, Any], runbook: Runbook) -> dict[str, Any]:
    """Variable values fit to show or store: each secret variable's value replaced by the mask."""
    secret = runbook.secret_names
    return {name: (MASK if name in secret and value is not None else value) for name, value in values.items()}


def redactor_for(values: Mapping[str, Any], runbook: Runbook) -> Redactor:
    """The Redactor for one run: the values of the runbook's secret variables."""
    return Redactor(values[name] for name in runbook.secret_names if name in values)
