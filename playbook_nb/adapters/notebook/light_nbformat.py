"""nbformat, imported without jsonschema's IRI grammars: `from playbook_nb.adapters.notebook.light_nbformat
import nbformat` wherever this package uses nbformat.

nbformat validates notebooks with jsonschema, and `import jsonschema` builds the 38 lark grammars of
`rfc3987_syntax` when that optional module is installed (jsonschema's `format-nongpl` extra, which JupyterLab
brings through jupyter_events): about 0.8 s of CPU, nine tenths of importing nbformat (issue 18.3). They serve
the `iri` and `iri-reference` format checks only, which nbformat never runs: its schemas use no `format`
keyword and it validates without a format checker. When this process has imported neither jsonschema nor
`rfc3987_syntax` yet, jsonschema is imported here with that module hidden, then the module is visible again:
jsonschema's format checker simply lacks those two formats in this process (as where the extra is not
installed), and an explicit `import rfc3987_syntax` still works. Where jsonschema is already loaded (a
Jupyter server), nothing changes.
"""

from __future__ import annotations

import sys

_HIDDEN = "rfc3987_syntax"


def _import_jsonschema_without_iri_grammars() -> None:
    if "jsonschema" in sys.modules or _HIDDEN in sys.modules:
        return
    sys.modules[_HIDDEN] = None  # type: ignore[assignment]  # `import rfc3987_syntax` raises ImportError
    try:
        import jsonschema  # noqa: F401
    except ImportError:  # nbformat reports it when it needs jsonschema
        pass
    finally:
        if _HIDDEN in sys.modules and sys.modules[_HIDDEN] is None:
            del sys.modules[_HIDDEN]


_import_jsonschema_without_iri_grammars()

import nbformat  # noqa: E402

__all__ = ["nbformat"]
