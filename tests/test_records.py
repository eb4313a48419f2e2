"""`Record` (issue 18.1: start-up) gives the rows and the configuration the dataclass's own equality, hash and
repr, at less cost to define: the same answers as a full `@dataclass(frozen=True)` of the same fields."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import NamedTuple

import pytest

from playbook_nb.adapters.store.models import Run
from playbook_nb.domain.records import Record, Row, Values


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


# `Values`: what the configuration's sections, its field table and the migrations use of a NamedTuple
class CheapValues(Values):
    """Named values."""

    a: int
    b: str = "x"
    c: tuple[int, ...] = ()


class FullValues(NamedTuple):
    """The same fields as a NamedTuple."""

    a: int
    b: str = "x"
    c: tuple[int, ...] = ()


CALLS = [((1,), {}), ((1, "y"), {}), ((), {"a": 2, "c": (3,)}), ((1,), {"b": "z"}), ((1, "y", (4,)), {})]


@pytest.mark.parametrize("args,kwargs", CALLS, ids=["default", "positional", "keywords", "mixed", "all"])
def test_values_read_compare_and_show_as_the_namedtuple(args, kwargs):
    cheap, full = CheapValues(*args, **kwargs), FullValues(*args, **kwargs)
    assert (cheap.a, cheap.b, cheap.c) == (full.a, full.b, full.c)
    assert repr(cheap).replace("CheapValues", "FullValues") == repr(full)
    assert cheap == CheapValues(*args, **kwargs) and hash(cheap) == hash(CheapValues(*args, **kwargs))
    assert cheap != CheapValues(a=cheap.a + 1)
    assert cheap._asdict() == full._asdict()
    assert cheap._replace(b="w")._asdict() == full._replace(b="w")._asdict()
    assert CheapValues._fields == FullValues._fields
    assert CheapValues._field_defaults == FullValues._field_defaults


@pytest.mark.parametrize(
    "args,kwargs",
    [((), {}), ((1, "x", (), 4), {}), ((1,), {"a": 2}), ((1,), {"d": 2})],
    ids=["missing", "too_many", "twice", "unknown"],
)
def test_values_refuse_the_calls_the_namedtuple_refuses(args, kwargs):
    with pytest.raises(TypeError):
        FullValues(*args, **kwargs)
    with pytest.raises(TypeError):
        CheapValues(*args, **kwargs)


def test_values_are_frozen():
    values = CheapValues(1)
    with pytest.raises(AttributeError):
        values.a = 2  # type: ignore[misc]
    with pytest.raises(AttributeError):
        del values.a
    assert values.a == 1


# `Row`: a Record dataclass whose __init__ and frozen pair are Row's, not compiled
@dataclass(eq=False, repr=False, init=False)
class CheapRow(Row):
    """A row."""

    a: int
    b: str = "x"
    hidden: str | None = field(default=None, repr=False)
    listed: list[int] = field(default_factory=list)


@dataclass(frozen=True)
class FullRow:
    """The same fields as a frozen dataclass."""

    a: int
    b: str = "x"
    hidden: str | None = field(default=None, repr=False)
    listed: list[int] = field(default_factory=list)


@pytest.mark.parametrize(
    "args,kwargs",
    [((1,), {}), ((1, "y", "h", [2]), {}), ((), {"a": 2, "listed": [3]}), ((1,), {"b": "z"})],
    ids=["default", "positional", "keywords", "mixed"],
)
def test_a_row_is_made_as_the_frozen_dataclass(args, kwargs):
    cheap, full = CheapRow(*args, **kwargs), FullRow(*args, **kwargs)
    assert dataclasses.asdict(cheap) == dataclasses.asdict(full)
    assert repr(cheap).replace("CheapRow", "FullRow") == repr(full)
    assert cheap == CheapRow(*args, **kwargs) and dataclasses.is_dataclass(cheap)
    assert dataclasses.replace(cheap, b="w") == CheapRow(**{**dataclasses.asdict(cheap), "b": "w"})
    assert CheapRow(1).listed is not CheapRow(1).listed  # a new list each, as default_factory gives


@pytest.mark.parametrize(
    "args,kwargs",
    [((), {}), ((1, "x", None, [], 5), {}), ((1,), {"a": 2}), ((1,), {"d": 2})],
    ids=["missing", "too_many", "twice", "unknown"],
)
def test_a_row_refuses_the_calls_the_dataclass_refuses(args, kwargs):
    with pytest.raises(TypeError):
        FullRow(*args, **kwargs)
    with pytest.raises(TypeError):
        CheapRow(*args, **kwargs)


def test_a_row_is_frozen():
    row = CheapRow(1)
    with pytest.raises(dataclasses.FrozenInstanceError):
        row.a = 2  # type: ignore[misc]
    with pytest.raises(dataclasses.FrozenInstanceError):
        del row.a
    assert row.a == 1 and row.__dict__ == {"a": 1, "b": "x", "hidden": None, "listed": []}
