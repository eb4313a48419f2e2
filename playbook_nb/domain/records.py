"""`Record`: equality, hash and repr written once for the frozen dataclasses every command defines at start;
`Values`: a NamedTuple's reading without its cost to define.

A `@dataclass(frozen=True)` compiles six functions when its class is defined (`__init__`, `__repr__`,
`__eq__`, `__hash__`, `__setattr__`, `__delattr__`), about half a millisecond a class; the run index's rows,
the owner, the settings and the configuration are a dozen classes that `runs list` and `show` define before
reading one row (issue 18.1; the configuration's sections are `Values`, below, cheaper still). Declared
`@dataclass(frozen=True, eq=False, repr=False)` on a `Record`, a class compiles its
`__init__` and the frozen pair only, and takes the other three from here, with the same meaning as the
dataclass's own: fields compared in order with `compare=True`, a class equal only to its own class, the hash
of those values, `Name(field=value, ...)` over the fields with `repr=True`.
"""

from __future__ import annotations

from dataclasses import MISSING, FrozenInstanceError, fields
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


_INIT: dict[type, tuple[tuple[str, ...], dict[str, Any], dict[str, Any]]] = {}


def _init_spec(cls: Any) -> tuple[tuple[str, ...], dict[str, Any], dict[str, Any]]:
    spec = _INIT.get(cls)
    if spec is None:
        init = [f for f in fields(cls) if f.init]
        defaults = {f.name: f.default for f in init if f.default is not MISSING}
        factories = {f.name: f.default_factory for f in init if f.default_factory is not MISSING}
        spec = _INIT[cls] = (tuple(f.name for f in init), defaults, factories)
    return spec


class Row(Record):
    """A Record whose dataclass compiles nothing when its class is defined (issue 18.1): declared
    `@dataclass(eq=False, repr=False, init=False)`, a class takes its `__init__` and the frozen pair from
    here, with the meaning of a frozen dataclass's own: the fields with `init=True` by position or keyword,
    their defaults and default factories, a TypeError for a missing, unknown or repeated one; assigning or
    deleting an attribute raises dataclasses.FrozenInstanceError. It is still a dataclass (`fields`,
    `replace`, `asdict`). The run index's eight row classes cost about 4 ms of every start as frozen
    dataclasses (`Run`'s generated `__init__` alone takes 33 arguments); an instance costs a little more to
    make (a loop over the fields instead of compiled code: a few microseconds a row)."""

    __slots__ = ()

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        names, defaults, factories = _init_spec(type(self))
        if len(args) > len(names):
            raise TypeError(
                f"{type(self).__name__}() takes {len(names)} arguments but {len(args)} were given"
            )
        put = object.__setattr__
        for name, value in zip(names, args, strict=False):
            if name in kwargs:
                raise TypeError(f"{type(self).__name__}() got multiple values for argument {name!r}")
            put(self, name, value)
        for name in names[len(args) :]:
            if name in kwargs:
                value = kwargs.pop(name)
            elif name in defaults:
                value = defaults[name]
            elif name in factories:
                value = factories[name]()
            else:
                raise TypeError(f"{type(self).__name__}() missing required argument: {name!r}")
            put(self, name, value)
        if kwargs:
            raise TypeError(
                f"{type(self).__name__}() got an unexpected keyword argument {next(iter(kwargs))!r}"
            )

    def __setattr__(self, name: str, value: Any) -> None:
        raise FrozenInstanceError(f"cannot assign to field {name!r}")

    def __delattr__(self, name: str) -> None:
        raise FrozenInstanceError(f"cannot delete field {name!r}")


class Values:
    """Named, frozen values read by name, as a NamedTuple's, at a plain class's cost (issue 18.1): defining a
    NamedTuple compiles its `__new__` (about 0.25 ms a class; the configuration's seven were 1.7 ms of every
    start), a subclass of this costs a few microseconds. Declared as a NamedTuple is (annotated fields, a
    default after the `=`), it gives what this code uses of one: construction by position or keyword with
    the same errors' kind (TypeError), attributes that cannot be set (AttributeError), equality and hash by
    the values (with its own class only: it is no tuple), the NamedTuple's repr, `_fields`,
    `_field_defaults`, `_replace` and `_asdict`."""

    __slots__ = ()
    _fields: tuple[str, ...] = ()
    _field_defaults: dict[str, Any] = {}

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        names = tuple(cls.__annotations__)  # the class's own (Python 3.10 on), in their order
        cls._fields = names
        cls._field_defaults = {name: cls.__dict__[name] for name in names if name in cls.__dict__}

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        names = self._fields
        if len(args) > len(names):
            raise TypeError(f"{type(self).__name__} takes {len(names)} values, {len(args)} given")
        values = dict(zip(names, args, strict=False))
        for name, value in kwargs.items():
            if name not in names:
                raise TypeError(f"{type(self).__name__} has no field {name!r}")
            if name in values:
                raise TypeError(f"{type(self).__name__} got {name!r} twice")
            values[name] = value
        for name in names:
            if name not in values:
                if name not in self._field_defaults:
                    raise TypeError(f"{type(self).__name__} needs {name!r}")
                values[name] = self._field_defaults[name]
        for name in names:
            object.__setattr__(self, name, values[name])

    def __setattr__(self, name: str, value: Any) -> None:
        raise AttributeError(f"can't set attribute {name!r} of {type(self).__name__}")

    def __delattr__(self, name: str) -> None:
        raise AttributeError(f"can't delete attribute {name!r} of {type(self).__name__}")

    def _values(self) -> tuple[Any, ...]:
        return tuple(getattr(self, name) for name in self._fields)

    def __eq__(self, other: object) -> bool:
        if other.__class__ is not self.__class__ or not isinstance(other, Values):
            return NotImplemented
        return self._values() == other._values()

    def __hash__(self) -> int:
        return hash(self._values())

    def __repr__(self) -> str:
        shown = ", ".join(f"{name}={getattr(self, name)!r}" for name in self._fields)
        return f"{type(self).__name__}({shown})"

    def _replace(self, **changes: Any) -> Any:
        return type(self)(**{**self._asdict(), **changes})

    def _asdict(self) -> dict[str, Any]:
        return {name: getattr(self, name) for name in self._fields}
