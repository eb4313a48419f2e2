"""The built-in `metrics_publish` plugin (OPS-001 step type `metrics_publish`): push gauges to a Prometheus
Pushgateway through prometheus_client.

`push(metrics, gateway?, job?, grouping?)`: `metrics` is a table of name -> number (templated values such as
"{{ steps.enrich.outputs.enriched | length }}" arrive as text and are converted). The gateway comes from the
parameter, `[runbook.plugin_config.metrics_publish] gateway`, or `PLAYBOOK_PUSHGATEWAY_URL`. The whole group
is replaced (HTTP PUT, prometheus_client's push_to_gateway). In a rehearsal nothing is pushed: the exposition
text that would be sent is printed and the metrics are returned with `published = false`.
"""

from __future__ import annotations

import math
import os
import re
from typing import Any

from playbook_nb.adapters.plugins.base import FunctionSignature, ParameterDef, Plugin, PluginMetadata
from playbook_nb.domain.errors import PluginError

GATEWAY_ENV = "PLAYBOOK_PUSHGATEWAY_URL"
DEFAULT_JOB = "playbook_nb"
_METRIC_NAME = re.compile(r"^[a-zA-Z_:][a-zA-Z0-9_:]*$")


class PushFailed(RuntimeError):
    show_traceback = False


class MetricsPublishPlugin(Plugin):
    def __init__(self) -> None:
        self.config: dict[str, Any] = {}

    def get_metadata(self) -> PluginMetadata:
        return PluginMetadata(
            name="metrics_publish",
            version="1.0.0",
            author="playbook-nb",
            description="Publish gauges to a Prometheus Pushgateway (prometheus_client)",
            functions={
                "push": FunctionSignature(
                    name="push",
                    description="Push a table of name -> number as gauges",
                    parameters={
                        "metrics": ParameterDef(type="dict", required=True, description="name -> number"),
                        "gateway": ParameterDef(
                            type="str", description=f"Pushgateway URL (else {GATEWAY_ENV})"
                        ),
                        "job": ParameterDef(type="str", description=f"job label (default {DEFAULT_JOB})"),
                        "grouping": ParameterDef(type="dict", description="extra grouping labels"),
                        "prefix": ParameterDef(type="str", default="", description="prepended to each name"),
                    },
                    returns="{published, metrics, gateway, job}",
                )
            },
        )

    def initialize(self, config: dict[str, Any]) -> None:
        self.config = dict(config or {})

    def rehearses(self, spec: dict[str, Any]) -> bool:
        return True  # a rehearsal renders what would be pushed and pushes nothing

    def execute(self, function_name: str, params: dict[str, Any]) -> Any:
        if function_name != "push":
            raise PluginError(f"plugin 'metrics_publish' has no function '{function_name}' (available: push)")
        from prometheus_client import CollectorRegistry, Gauge, push_to_gateway
        from prometheus_client.exposition import generate_latest

        values = {f"{params.get('prefix') or ''}{k}": _number(k, v) for k, v in params["metrics"].items()}
        if not values:
            raise PluginError("plugin 'metrics_publish': metrics is empty")
        registry = CollectorRegistry()
        node = self.context.node_id if self.context else ""
        for name, value in values.items():
            if not _METRIC_NAME.match(name):
                raise PluginError(f"plugin 'metrics_publish': '{name}' is not a valid Prometheus metric name")
            Gauge(name, f"published by playbook-nb step {node}".strip(), registry=registry).set(value)
        job = params.get("job") or self.config.get("job") or DEFAULT_JOB
        grouping = {
            str(k): str(v) for k, v in (params.get("grouping") or self.config.get("grouping") or {}).items()
        }
        result = {"metrics": values, "job": job, "grouping": grouping}
        if self.context is not None and self.context.rehearsal is not None:
            print("rehearsal: not pushed; would send:")
            print(generate_latest(registry).decode().rstrip())
            return {**result, "published": False, "gateway": None}
        gateway = params.get("gateway") or self.config.get("gateway") or os.environ.get(GATEWAY_ENV)
        if not gateway:
            raise PluginError(
                "plugin 'metrics_publish': no Pushgateway: give gateway, [runbook.plugin_config.metrics_publish] "
                f"gateway, or {GATEWAY_ENV}"
            )
        try:
            push_to_gateway(str(gateway), job=job, registry=registry, grouping_key=grouping, timeout=30)
        except OSError as err:  # urllib's URLError/HTTPError are OSErrors
            raise PushFailed(f"push to {gateway} failed: {err}") from None
        print(f"pushed {len(values)} metrics to {gateway} (job {job})")
        return {**result, "published": True, "gateway": str(gateway)}

    def cleanup(self) -> None:
        pass


def _number(name: str, value: Any) -> float:
    if isinstance(value, bool):
        return float(value)
    try:
        number = float(value)
    except (TypeError, ValueError):
        raise PluginError(f"plugin 'metrics_publish': metric '{name}' is not a number: {value!r}") from None
    if math.isnan(number):
        raise PluginError(f"plugin 'metrics_publish': metric '{name}' is NaN")
    return number
