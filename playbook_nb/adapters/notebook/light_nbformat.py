"""nbformat, imported without jsonschema's IRI grammars: `from playbook_nb.adapters.notebook.light_nbformat
import nbformat` wherever this package uses nbformat.

nbformat validates notebooks with jsonschema, and `import jsonschema` builds the 38 lark grammars of
`rfc3987_syntax` when that optional module is installed (jsonschema's `format-nongpl` extra, which JupyterLab
brings through jupyter_events): about 0.8 s of CPU, nine tenths of importing nbformat (issue 18.3). They serve
the `iri` and `iri-reference` format checks only, which nbformat never runs: its schemas use no `format`
keyword and it validates without a format checker. The other optional modules of that extra (isoduration
with arrow, webcolors, uri_template, fqdn, idna, jsonpointer, the rfc3339 and rfc3986 validators: about
0.03 s more) serve other format checks only. When this process has not imported jsonschema yet, it is
imported here with those of them not loaded yet hidden, then they are visible again: jsonschema's format checker
simply lacks those formats in this process (as where the extra is not installed), and an explicit import of
any of them still works. Where jsonschema is already loaded (a Jupyter server), nothing changes, nor in a
kernel (ipykernel loaded): the user's code runs in that process and may check formats with jsonschema.
"""

from __future__ import annotations

import contextlib
import sys

from playbook_nb.adapters.notebook.hidden_modules import modules_hidden

# jsonschema's optional format-checker modules (jsonschema/_format.py), rfc3987_syntax first
_HIDDEN = (
    "rfc3987_syntax",
    "isoduration",
    "webcolors",
    "uri_template",
    "fqdn",
    "idna",
    "jsonpointer",
    "rfc3339_validator",
    "rfc3986_validator",
)


def _import_jsonschema_without_iri_grammars() -> None:
    if "jsonschema" in sys.modules or "ipykernel" in sys.modules:
        return
    # an ImportError: nbformat reports it when it needs jsonschema
    with modules_hidden(*_HIDDEN), contextlib.suppress(ImportError):
        import jsonschema  # noqa: F401


_import_jsonschema_without_iri_grammars()

import nbformat  # noqa: E402

__all__ = ["nbformat"]
