"""`Record` (issue 18.1: start-up) gives the rows and the configuration the dataclass's own equality, hash and
repr, at less cost to define: the same answers as a full `@dataclass(frozen=True)` of the same fields."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field

import pytest

from playbook_nb.adapters.store.models import Run
from playbook_nb.domain.records import Record


@dataclass(frozen=True, eq=False, repr=False)
class Cheap(Record):
    """A record."""

    a: int
    b: str = "x"
    hidden: str | None = field(default=None, repr=False)
    ignored: int = field(default=0, compare=False)


@dataclass(frozen=True)
class Full:
    """The same fields as a full dataclass."""

    a: int
    b: str = "x"
    hidden: str | None = field(default=None, repr=False)
    ignored: int = field(default=0, compare=False)


PAIRS = [((1, "x", None, 0), (1, "x", None, 0)), ((1, "x"), (2, "x")), ((1, "x", "s", 0), (1, "x", "t", 5))]


@pytest.mark.parametrize("left,right", PAIRS, ids=["same", "differ", "hidden_differs_ignored_too"])
def test_a_record_compares_hashes_and_shows_as_the_dataclass(left, right):
    cheap = (Cheap(*left), Cheap(*right))
    full = (Full(*left), Full(*right))
    assert (cheap[0] == cheap[1]) == (full[0] == full[1])
    assert (cheap[0] != cheap[1]) == (full[0] != full[1])
    assert (hash(cheap[0]) == hash(cheap[1])) == (hash(full[0]) == hash(full[1]))
    assert repr(cheap[0]).replace("Cheap", "Full") == repr(full[0])


def test_a_record_is_frozen_and_equal_only_to_its_own_class():
    record = Cheap(1)
    with pytest.raises(dataclasses.FrozenInstanceError):
        record.a = 2  # type: ignore[misc]
    assert record != Full(1) and record != (1, "x", None, 0)
    assert dataclasses.replace(record, a=3) == Cheap(3)


def test_a_runs_repr_keeps_its_owner_token_out():
    fields = {f.name: None for f in dataclasses.fields(Run)}
    run = Run(**{**fields, "id": 1, "owner_token": "secret-token-value", "snapshot": {"big": 1}})
    assert "secret-token-value" not in repr(run) and "snapshot" not in repr(run)
    assert repr(run).startswith("Run(id=1, ")
