"""`*.playbook.toml` opened as a notebook: the server compiles the TOML each time the notebook is opened.

How: the server's contents manager (whatever class is configured, jupytext's included) gets one more base,
`RunbookNotebooks`, applied to the running instance. It changes exactly one request: `get(path,
type="notebook")` for a path ending in `.playbook.toml` returns the compiled notebook, marked read-only.
Every other request (notebooks, the TOML read as text by the editor, listings, saves) goes to the configured
manager unchanged, so ordinary notebooks are untouched and the TOML is only ever written by a text editor.

The notebook is read-only (`writable: false`): JupyterLab then never autosaves it and its "Save" offers
"Save As" (a plain .ipynb copy). A save aimed at the TOML with notebook content is refused, so notebook JSON
can never land in a runbook. Why not jupytext's round trip: a compiled notebook has cells (the widget, the
setup, the summary) that are not in the TOML, so there is no faithful way back; the TOML stays the one source.
"""

from __future__ import annotations

import inspect
import types
from typing import TYPE_CHECKING, Any

from tornado import web

from playbook_nb.domain.errors import PlaybookError

if TYPE_CHECKING:
    from jupyter_server.services.contents.manager import ContentsManager

RUNBOOK_SUFFIX = ".playbook.toml"


def is_runbook(path: str) -> bool:
    return path.rstrip("/").endswith(RUNBOOK_SUFFIX)


def compiled_notebook(text: str, path: str) -> dict[str, Any]:
    """The notebook of runbook `text` (API path `path`), or HTTP 400 with the validation error's one line."""
    from playbook_nb.adapters.notebook.compile import compile_runbook
    from playbook_nb.domain.validation import parse_runbook, refuse_secret_defaults

    try:
        runbook = parse_runbook(text, path=path)
        refuse_secret_defaults(runbook)
        return compile_runbook(runbook, source_path=path)
    except PlaybookError as err:
        message = str(err).splitlines()[0] if str(err) else type(err).__name__
        raise web.HTTPError(400, message, reason=message[:300]) from None


def _as_notebook(model: dict[str, Any], content: bool) -> dict[str, Any]:
    """The TOML's file model turned into a (read-only) notebook model."""
    notebook = None
    if content:
        text = model.get("content")
        if not isinstance(text, str):  # asked with format="text": jupyter_server's file model holds a str
            raise web.HTTPError(500, f"{model['path']}: the runbook's file model has no text content")
        notebook = compiled_notebook(text, model["path"])
    return {
        **model,
        "type": "notebook",
        "format": "json" if content else None,
        "mimetype": None,
        "content": notebook,
        "writable": False,
    }


def _refuse_notebook_save(path: str) -> web.HTTPError:
    message = (
        f"{path} is a runbook: its notebook is compiled from the TOML and never saved over it; "
        "edit the TOML (Open With > Editor), or use Save Notebook As for an .ipynb copy"
    )
    return web.HTTPError(400, message, reason="runbook notebooks are read-only")


class RunbookNotebooks:
    """Base for a synchronous contents manager (see the module docstring)."""

    def get(self, path, content=True, type=None, format=None, **kwargs):
        if type == "notebook" and is_runbook(path):
            model = super().get(path, content=content, type="file", format="text", **kwargs)
            return _as_notebook(model, content)
        return super().get(path, content=content, type=type, format=format, **kwargs)

    def save(self, model, path=""):
        if is_runbook(path) and model.get("type") == "notebook":
            raise _refuse_notebook_save(path)
        return super().save(model, path)


class AsyncRunbookNotebooks:
    """Base for an asynchronous contents manager (jupyter_server's default)."""

    async def get(self, path, content=True, type=None, format=None, **kwargs):
        if type == "notebook" and is_runbook(path):
            model = await super().get(path, content=content, type="file", format="text", **kwargs)
            return _as_notebook(model, content)
        return await super().get(path, content=content, type=type, format=format, **kwargs)

    async def save(self, model, path=""):
        if is_runbook(path) and model.get("type") == "notebook":
            raise _refuse_notebook_save(path)
        return await super().save(model, path)


def with_runbook_notebooks(cls: type[ContentsManager]) -> type:
    """`cls` with runbook notebooks: a subclass with the matching base first (or `cls` if it has one)."""
    if issubclass(cls, RunbookNotebooks | AsyncRunbookNotebooks):
        return cls
    base = AsyncRunbookNotebooks if inspect.iscoroutinefunction(cls.get) else RunbookNotebooks
    return types.new_class(
        f"Runbook{cls.__name__}", (base, cls), {}, lambda ns: ns.update(__module__=__name__)
    )


def serve_runbooks_as_notebooks(serverapp) -> None:
    """Give the running contents manager the runbook base, in place: the instance the session manager and
    the handlers already hold keeps its configuration and state."""
    manager = serverapp.contents_manager
    manager.__class__ = with_runbook_notebooks(type(manager))
