"""Python nodes: code executed in a namespace (in the notebook, the kernel's user namespace).

The code runs on the caller's thread, so in a kernel `display()` of tables and plots lands in the node's cell
and names it defines stay visible to later cells. What it prints is captured and still shown.
"""

from __future__ import annotations

import ast
import linecache
import threading
import time
import traceback
from types import CodeType
from typing import Any

from playbook_nb.adapters.executors.capture import (
    DEFAULT_MAX_OUTPUT_BYTES,
    OutputCallback,
    capture_thread_output,
)
from playbook_nb.adapters.executors.stopper import NodeStopped, Stopper
from playbook_nb.app.ports import AttemptResult


def _register_source(filename: str, code: str) -> None:
    """Let tracebacks (ours and IPython's) show the node's source lines."""
    lines = code.splitlines(keepends=True)
    linecache.cache[filename] = (len(code), None, lines, filename)


def _only_node_frames(te: traceback.TracebackException, filename: str) -> None:
    seen: set[int] = set()
    todo = [te]
    while todo:
        current = todo.pop()
        if id(current) in seen:
            continue
        seen.add(id(current))
        current.stack = traceback.StackSummary.from_list([f for f in current.stack if f.filename == filename])
        todo.extend(t for t in (current.__cause__, current.__context__) if t is not None)
        todo.extend(getattr(current, "exceptions", None) or [])


def _compile(code: str, filename: str) -> tuple[CodeType, CodeType | None]:
    """(body, last expression or None): like a notebook cell, a final expression gives the value."""
    tree = ast.parse(code, filename, "exec")
    last = None
    final = tree.body[-1] if tree.body else None
    if isinstance(final, ast.Expr):
        tree.body.pop()
        last = compile(ast.Expression(final.value), filename, "eval")
    return compile(tree, filename, "exec"), last


def run_python(
    code: str,
    namespace: dict[str, Any],
    *,
    filename: str = "<node>",
    on_output: OutputCallback | None = None,
    max_output_bytes: int = DEFAULT_MAX_OUTPUT_BYTES,
    timeout: float | None = None,
    cancel: threading.Event | None = None,
) -> AttemptResult:
    """Execute `code` in `namespace` and return what happened.

    - Names the code defines are left in `namespace`.
    - A final expression's value becomes `return_value` (not displayed: the face decides).
    - stdout/stderr are captured and shown: to `on_output` line by line when given, else to the streams that
      were in place (the terminal, the kernel's cell).
    - An exception gives ok False, error "<Type>: message", and its traceback, limited to the frames of the
      node's own code (`filename`; give each node its own, e.g. "<node deploy>"), in stderr (and shown).
      `sys.exit(0)` / `sys.exit()` count as success.
    - `timeout` (seconds) or a set `cancel` event (Abort) stop the code (`NodeStopped` is raised in it, see
      `stopper`): error "Python node timed out after N seconds", or `interrupted` True.
    - A KeyboardInterrupt (a kernel interrupt, Ctrl-C) is not the node's failure: it propagates.
    """
    started = time.time()
    _register_source(filename, code)
    error: str | None = None
    value: Any = None
    stopper = Stopper(timeout, cancel)
    with capture_thread_output(on_output, max_output_bytes) as capture:
        try:
            with stopper:
                body, last = _compile(code, filename)
                exec(body, namespace)
                if last is not None:
                    value = eval(last, namespace)
        except NodeStopped:
            if stopper.reason == "timeout":
                error = f"Python node timed out after {timeout:g} seconds"
            else:
                error = "interrupted"
        except SystemExit as exc:
            if exc.code not in (None, 0):
                error = f"SystemExit: {exc.code}"
        except SyntaxError as exc:
            error = f"SyntaxError: {exc.msg} (line {exc.lineno})"
            capture.write("stderr", "".join(traceback.format_exception_only(exc)))
        except Exception as exc:
            message = " ".join(str(exc).split())
            error = f"{type(exc).__name__}: {message}" if message else type(exc).__name__
            te = traceback.TracebackException.from_exception(exc)
            _only_node_frames(te, filename)
            capture.write("stderr", "".join(te.format()))
    return AttemptResult(
        ok=error is None,
        stdout=capture.text("stdout"),
        stderr=capture.text("stderr"),
        return_value=value,
        error=error,
        started_at=started,
        ended_at=time.time(),
        truncated=capture.truncated,
        interrupted=stopper.reason == "cancelled",
    )
