"""Plugins: the seed-compatible interface, entry point discovery and the built-in `python` plugin."""

from playbook_nb.adapters.plugins.base import FunctionSignature, ParameterDef, Plugin, PluginMetadata
from playbook_nb.adapters.plugins.registry import (
    check_params,
    expand_env,
    get_plugin,
    list_plugins,
    merge_plugin_config,
    plugin_metadata,
)

__all__ = [
    "FunctionSignature",
    "ParameterDef",
    "Plugin",
    "PluginMetadata",
    "check_params",
    "expand_env",
    "get_plugin",
    "list_plugins",
    "merge_plugin_config",
    "plugin_metadata",
]
