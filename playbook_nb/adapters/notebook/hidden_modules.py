"""Import a module while some of its optional dependencies look absent (issue 18.3: the headless driver's
start-up). A name already imported stays usable; the others raise ImportError during the block and are
importable again afterwards."""

from __future__ import annotations

import contextlib
import sys
from collections.abc import Iterator


@contextlib.contextmanager
def modules_hidden(*names: str) -> Iterator[None]:
    hidden = [name for name in names if name not in sys.modules]
    for name in hidden:
        sys.modules[name] = None  # type: ignore[assignment]  # an import of it raises ImportError
    try:
        yield
    finally:
        for name in hidden:
            if name in sys.modules and sys.modules[name] is None:
                del sys.modules[name]
