"""The plugin interface, compatible with the seed's `playbook.domain.plugins`: defined with the application's
ports (`playbook_nb.app.plugin_api`, where its rules and docs are) and importable from here, the path plugin
authors use."""

from playbook_nb.app.plugin_api import FunctionSignature, ParameterDef, Plugin, PluginMetadata
from playbook_nb.app.ports import StepContext

__all__ = ["FunctionSignature", "ParameterDef", "Plugin", "PluginMetadata", "StepContext"]
