"""The built-in `python` plugin: small utilities for runbooks and drills (notify, sleep, throw)."""

from __future__ import annotations

import time
from typing import Any

from playbook_nb.adapters.plugins.base import FunctionSignature, ParameterDef, Plugin, PluginMetadata
from playbook_nb.domain.errors import PluginError

DEFAULT_THROW_MESSAGE = "Intentional failure raised by the python plugin's throw function"


class ThrownError(RuntimeError):
    """What `throw` raises: a deliberate failure, e.g. to drill a rollback branch."""

    show_traceback = False  # the one-line error says it all


class PythonPlugin(Plugin):
    def __init__(self) -> None:
        self.config: dict[str, Any] = {}

    def get_metadata(self) -> PluginMetadata:
        return PluginMetadata(
            name="python",
            version="1.0.0",
            author="playbook-nb",
            description="Built-in utility functions (notify, sleep, throw) for common workflow operations",
            functions={
                "notify": FunctionSignature(
                    name="notify",
                    description="Print a message (to the node's output) and return it",
                    parameters={
                        "message": ParameterDef(type="str", required=True, description="Text to show"),
                        "level": ParameterDef(
                            type="str",
                            default="info",
                            description="info (printed as is), or e.g. warning / error (printed as a prefix)",
                        ),
                    },
                    returns="str",
                ),
                "sleep": FunctionSignature(
                    name="sleep",
                    description="Wait a number of seconds and return it",
                    parameters={
                        "seconds": ParameterDef(type="float", required=True, description="Seconds to wait"),
                    },
                    returns="float",
                ),
                "throw": FunctionSignature(
                    name="throw",
                    description="Fail on purpose (drills: make a node fail to exercise failure branches)",
                    parameters={
                        "message": ParameterDef(
                            type="str", default=DEFAULT_THROW_MESSAGE, description="Error message"
                        ),
                    },
                    returns=None,
                ),
            },
        )

    def initialize(self, config: dict[str, Any]) -> None:
        self.config = dict(config or {})

    def execute(self, function_name: str, params: dict[str, Any]) -> Any:
        if function_name == "notify":
            return self._notify(**params)
        if function_name == "sleep":
            return self._sleep(**params)
        if function_name == "throw":
            raise ThrownError(params.get("message") or DEFAULT_THROW_MESSAGE)
        raise PluginError(
            f"plugin 'python' has no function '{function_name}' (available: notify, sleep, throw)"
        )

    def cleanup(self) -> None:
        pass

    @staticmethod
    def _notify(message: str, level: str = "info") -> str:
        level = (level or "info").strip().lower()
        print(message if level == "info" else f"[{level.upper()}] {message}", flush=True)
        return message

    @staticmethod
    def _sleep(seconds: float) -> float:
        if seconds < 0:
            raise ValueError(f"seconds must not be negative (got {seconds:g})")
        time.sleep(seconds)
        return seconds
