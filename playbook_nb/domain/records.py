"""`Record`: equality, hash and repr written once for the frozen dataclasses every command defines at start.

A `@dataclass(frozen=True)` compiles six functions when its class is defined (`__init__`, `__repr__`,
`__eq__`, `__hash__`, `__setattr__`, `__delattr__`), about half a millisecond a class; the run index's rows,
the owner, the settings and the configuration are a dozen classes that `runs list` and `show` define before
reading one row (issue 18.1; the configuration's sections are NamedTuples, cheaper still). Declared `@dataclass(frozen=True, eq=False, repr=False)` on a `Record`, a class compiles its
`__init__` and the frozen pair only, and takes the other three from here, with the same meaning as the
dataclass's own: fields compared in order with `compare=True`, a class equal only to its own class, the hash
of those values, `Name(field=value, ...)` over the fields with `repr=True`.
"""

from __future__ import annotations

from dataclasses import fields
from typing import Any

_COMPARED: dict[type, tuple[str, ...]] = {}
_SHOWN: dict[type, tuple[str, ...]] = {}


def _compared(cls: Any) -> tuple[str, ...]:
    names = _COMPARED.get(cls)
    if names is None:
        names = _COMPARED[cls] = tuple(f.name for f in fields(cls) if f.compare)
    return names


def _shown(cls: Any) -> tuple[str, ...]:
    names = _SHOWN.get(cls)
    if names is None:
        names = _SHOWN[cls] = tuple(f.name for f in fields(cls) if f.repr)
    return names


class Record:
    __slots__ = ()

    def _values(self) -> tuple[Any, ...]:
        return tuple(getattr(self, name) for name in _compared(type(self)))

    def __eq__(self, other: object) -> bool:
        if other.__class__ is not self.__class__ or not isinstance(other, Record):
            return NotImplemented
        return self._values() == other._values()

    def __hash__(self) -> int:
        return hash(self._values())

    def __repr__(self) -> str:
        shown = ", ".join(f"{name}={getattr(self, name)!r}" for name in _shown(type(self)))
        return f"{type(self).__qualname__}({shown})"
