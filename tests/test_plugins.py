"""Plugin system: real entry point discovery, parameter checks and conversion, plugin configuration."""

from __future__ import annotations

import importlib.metadata
import sys
import textwrap

import pytest

from playbook_nb.adapters.plugins import (
    FunctionSignature,
    ParameterDef,
    PluginMetadata,
    check_params,
    expand_env,
    get_plugin,
    list_plugins,
    merge_plugin_config,
    plugin_metadata,
)
from playbook_nb.adapters.plugins.python_plugin import PythonPlugin, ThrownError
from playbook_nb.adapters.plugins.registry import reset_cache
from playbook_nb.domain.errors import PluginError


def test_python_plugin_is_found_through_the_real_entry_point():
    names = [ep.name for ep in importlib.metadata.entry_points(group="playbook.plugins")]
    assert "python" in names
    cls = get_plugin("python")
    assert cls is PythonPlugin
    meta = cls().get_metadata()
    assert meta.name == "python"
    assert sorted(meta.functions) == ["notify", "sleep", "throw"]


def test_list_plugins_describes_the_builtin_plugin():
    by_name = {m.name: m for m in list_plugins()}
    assert set(by_name["python"].functions) == {"notify", "sleep", "throw"}
    assert by_name["python"].functions["sleep"].parameters["seconds"].required


def test_unknown_plugin_is_one_clear_line():
    with pytest.raises(PluginError) as err:
        get_plugin("nope")
    assert (
        str(err.value)
        == "unknown plugin 'nope' (available: http, metrics_publish, python, schema_check, ui_screenshot)"
    )


def test_unknown_function_lists_what_is_available():
    with pytest.raises(PluginError) as err:
        check_params(plugin_metadata("python"), "nope", {})
    assert str(err.value) == "plugin 'python' has no function 'nope' (available: notify, sleep, throw)"


def test_params_are_converted_to_the_declared_type():
    assert check_params(plugin_metadata("python"), "sleep", {"seconds": "300"}) == {"seconds": 300}
    assert check_params(plugin_metadata("python"), "sleep", {"seconds": "0.5"}) == {"seconds": 0.5}
    meta = PluginMetadata(
        name="example",
        version="1",
        author="me",
        description="",
        functions={
            "send_alert": FunctionSignature(
                name="send_alert",
                description="",
                parameters={
                    "message": ParameterDef(type="str", required=True),
                    "urgent": ParameterDef(type="bool", default=False),
                    "count": ParameterDef(type="int", default=1),
                    "tags": ParameterDef(type="list"),
                    "extra": ParameterDef(type="dict"),
                    "color": ParameterDef(type="str", choices=["red", "green"]),
                },
            )
        },
    )
    params = {"message": "Alert", "urgent": "yes", "tags": '["a","b"]', "extra": '{"k": 1}', "color": "red"}
    assert check_params(meta, "send_alert", params) == {
        "message": "Alert",
        "urgent": True,
        "count": 1,
        "tags": ["a", "b"],
        "extra": {"k": 1},
        "color": "red",
    }
    with pytest.raises(PluginError) as err:
        check_params(meta, "send_alert", {"message": "x", "color": "blue"})
    assert str(err.value) == (
        "plugin 'example', function 'send_alert', parameter 'color': 'blue' is not one of 'red', 'green'"
    )


def test_defaults_fill_in_omitted_parameters():
    assert check_params(plugin_metadata("python"), "notify", {"message": "hi"}) == {
        "message": "hi",
        "level": "info",
    }
    assert check_params(plugin_metadata("python"), "throw", {})["message"]


def test_missing_and_unknown_parameters_are_one_line_errors():
    meta = plugin_metadata("python")
    with pytest.raises(PluginError) as err:
        check_params(meta, "sleep", {})
    assert str(err.value) == "plugin 'python', function 'sleep': missing required parameter 'seconds'"
    with pytest.raises(PluginError) as err:
        check_params(meta, "sleep", {"seconds": 1, "secs": 2})
    assert str(err.value) == "plugin 'python', function 'sleep': unknown parameter 'secs' (accepted: seconds)"
    with pytest.raises(PluginError) as err:
        check_params(meta, "sleep", {"seconds": "soon"})
    assert (
        str(err.value)
        == "plugin 'python', function 'sleep', parameter 'seconds': expected a number, got 'soon'"
    )


def test_node_plugin_config_overrides_the_global_one():
    global_cfg = {"default_webhook": "g", "timeout": 30, "headers": {"a": "1", "b": "2"}}
    node_cfg = {"timeout": 5, "webhook_url": "n", "headers": {"b": "node"}}
    merged = merge_plugin_config(global_cfg, node_cfg)
    assert merged == {
        "default_webhook": "g",
        "timeout": 5,
        "webhook_url": "n",
        "headers": {"a": "1", "b": "node"},
    }
    assert global_cfg["headers"] == {"a": "1", "b": "2"}  # inputs untouched
    assert merge_plugin_config(None, None) == {}


def test_expand_env_replaces_references_at_any_depth(monkeypatch):
    monkeypatch.setenv("PBNB_HOOK", "https://hooks.example/x")
    monkeypatch.setenv("PBNB_CHANNEL", "ops")
    cfg = {
        "webhook": "${PBNB_HOOK}",
        "targets": ["#${PBNB_CHANNEL}", 3],
        "nested": {"url": "${PBNB_HOOK}/y"},
        "literal": "$${PBNB_HOOK} costs $5",
        "timeout": 30,
    }
    assert expand_env(cfg) == {
        "webhook": "https://hooks.example/x",
        "targets": ["#ops", 3],
        "nested": {"url": "https://hooks.example/x/y"},
        "literal": "${PBNB_HOOK} costs $5",
        "timeout": 30,
    }


def test_expand_env_names_a_missing_variable(monkeypatch):
    monkeypatch.delenv("PBNB_SURELY_UNSET", raising=False)
    with pytest.raises(PluginError) as err:
        expand_env({"slack": {"webhook_url": "${PBNB_SURELY_UNSET}"}})
    assert (
        str(err.value)
        == "plugin_config.slack.webhook_url: environment variable 'PBNB_SURELY_UNSET' is not set"
    )


@pytest.fixture
def installed_plugins(tmp_path, monkeypatch):
    """Install plugins for real: a dist-info with entry points on sys.path, found by importlib.metadata."""

    def install(entry_points: dict[str, str], modules: dict[str, str]):
        dist = tmp_path / "pbnb_test_plugins-1.0.dist-info"
        dist.mkdir()
        (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: pbnb-test-plugins\nVersion: 1.0\n")
        lines = "\n".join(f"{name} = {target}" for name, target in entry_points.items())
        (dist / "entry_points.txt").write_text(f"[playbook.plugins]\n{lines}\n")
        for module, source in modules.items():
            (tmp_path / f"{module}.py").write_text(textwrap.dedent(source))
        monkeypatch.syspath_prepend(str(tmp_path))
        reset_cache()

    yield install
    reset_cache()
    for module in [m for m in sys.modules if m.startswith("pbnb_test_")]:
        del sys.modules[module]


def test_a_plugin_that_fails_to_load_is_a_clear_error(installed_plugins):
    installed_plugins(
        {"broken": "pbnb_test_broken:BrokenPlugin", "notaplugin": "pbnb_test_ok:NOT_A_CLASS"},
        {
            "pbnb_test_broken": "import pbnb_test_missing_dependency\n",
            "pbnb_test_ok": "NOT_A_CLASS = 42\n",
        },
    )
    with pytest.raises(PluginError) as err:
        get_plugin("broken")
    assert str(err.value) == (
        "plugin 'broken' (pbnb_test_broken:BrokenPlugin) failed to load: "
        "ModuleNotFoundError: No module named 'pbnb_test_missing_dependency'"
    )
    with pytest.raises(
        PluginError, match=r"^plugin 'notaplugin' \(pbnb_test_ok:NOT_A_CLASS\) is not a plugin"
    ):
        get_plugin("notaplugin")
    # One broken plugin does not hide the others when the caller collects the errors.
    errors: list[PluginError] = []
    names = [m.name for m in list_plugins(errors)]
    assert names == ["http", "metrics_publish", "python", "schema_check", "ui_screenshot"]
    assert len(errors) == 2
    with pytest.raises(PluginError):
        list_plugins()


def test_a_third_party_plugin_is_discovered_and_run(installed_plugins):
    from playbook_nb.adapters.executors.function import run_function

    installed_plugins(
        {"greeter": "pbnb_test_greeter:Greeter"},
        {
            "pbnb_test_greeter": """
            from playbook_nb.adapters.plugins.base import FunctionSignature, ParameterDef, Plugin, PluginMetadata

            class Greeter(Plugin):
                def get_metadata(self):
                    return PluginMetadata("greeter", "1.0", "me", "says hello", {
                        "greet": FunctionSignature("greet", "hello", {
                            "name": ParameterDef(type="str", required=True),
                            "times": ParameterDef(type="int", default=1),
                        }),
                    })

                def initialize(self, config):
                    self.prefix = config.get("prefix", "Hello")

                def execute(self, function_name, params):
                    return " ".join([f"{self.prefix} {params['name']}"] * params["times"])

                def cleanup(self):
                    pass
            """,
        },
    )
    result = run_function("greeter", "greet", {"name": "ops", "times": "2"}, plugin_config={"prefix": "Hi"})
    assert result.ok, result.error
    assert result.return_value == "Hi ops Hi ops"


def test_throw_raises_its_message():
    plugin = PythonPlugin()
    plugin.initialize({})
    with pytest.raises(ThrownError, match="^drill$"):
        plugin.execute("throw", {"message": "drill"})
