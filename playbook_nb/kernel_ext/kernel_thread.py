"""Widget message handlers run on the thread that drives the run, whichever thread delivers the message.

A run's session is driven from one thread: the kernel's main thread, where the notebook's cells run and the
cockpit is built. ipykernel 7 hands a comm's messages to the subshell that comm last published from, and a
subshell has a thread of its own; JupyterLab 4.6 sends its widget messages over subshells. A cockpit's comms
publish from the main thread, so today their messages come there. But a widget whose state is set from code
running in a subshell (a console or an extension on the same kernel) moves its comm to that subshell, and
its next click would then call the session from a second thread, while a node cell may be writing to the
same run index on the first. `on_this_thread` makes each handler run on the thread that registered it.
"""

from __future__ import annotations

import asyncio
import contextvars
import functools
import threading
from collections.abc import Callable
from typing import Any


def on_this_thread(handler: Callable[..., Any]) -> Callable[..., Any]:
    """`handler`, called where it is when a message comes on this thread, and otherwise passed to this thread's
    event loop (in order, with the context of the message it answers: its prints still go where that
    message's prints go). Outside a running event loop (tests, a plain IPython) `handler` itself: messages
    there come on this thread."""
    try:
        loop = asyncio.get_running_loop()
    except RuntimeError:
        return handler
    home = threading.get_ident()

    @functools.wraps(handler)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        if threading.get_ident() == home:
            return handler(*args, **kwargs)
        call = functools.partial(_showing_errors, handler, args, kwargs)
        loop.call_soon_threadsafe(call, context=contextvars.copy_context())
        return None

    return wrapper


def _showing_errors(handler: Callable[..., Any], args: tuple, kwargs: dict) -> None:
    """An error in a passed-on handler is shown as ipywidgets shows one in a handler (the loop would only log
    it in the kernel's log, where nobody looks)."""
    try:
        handler(*args, **kwargs)
    except Exception:
        from IPython import get_ipython

        shell = get_ipython()
        if shell is None:
            raise
        shell.showtraceback()
