"""`from playbook.domain.plugins import Plugin, PluginMetadata, FunctionSignature, ParameterDef`, as the seed's
README shows plugin authors: the same classes as playbook_nb's plugin interface, so a seed plugin registered
under the `playbook.plugins` entry point group runs unchanged."""

from playbook_nb.adapters.plugins.base import FunctionSignature, ParameterDef, Plugin, PluginMetadata

__all__ = ["FunctionSignature", "ParameterDef", "Plugin", "PluginMetadata"]
