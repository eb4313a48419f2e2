"""The built-in `http` plugin: one HTTP request, its status checked, its JSON body returned (the step's
outputs are JSONPath expressions into it). OPS-001's `data_fetch` is `http.fetch`, `api_call` is `http.call`.

- `fetch`: GET `source_url` (or `url`), optional query `params`.
- `call`: a REST or GraphQL call to `endpoint` (absolute, or relative to `base_url` / the plugin_config's
  `base_url`), POST by default. With `query` (GraphQL text, or a `.graphql` file next to the runbook) the body
  is `{"query": ..., "variables": ...}` and every parameter the function does not declare is a GraphQL
  variable (OPS-001's `entities`); without it, `json` is the body, or else the undeclared parameters are.

`auth_token` becomes `Authorization: Bearer ...`; it and the headers that carry credentials are declared
secret, so the run masks their values (and the variables they come from) in every record. A status other than
`expected_status` fails the step, as does a GraphQL answer with `errors`.

In a rehearsal (`context.rehearsal` holds the node's fixture entry) nothing is sent: the fixture's `response`
(`status`, `json` or `body`, `headers`) answers, and the status check and outputs apply to it as for real.
"""

from __future__ import annotations

import json
import time
from typing import Any

from playbook_nb.adapters.plugins.base import FunctionSignature, ParameterDef, Plugin, PluginMetadata
from playbook_nb.domain.errors import PluginError
from playbook_nb.domain.redact import MASK

SECRET_HEADERS = (
    "headers.authorization",
    "headers.proxy-authorization",
    "headers.cookie",
    "headers.*token*",
    "headers.*secret*",
    "headers.*password*",
    "headers.*api-key*",
    "headers.*api_key*",
    "headers.*apikey*",
)
SECRET_PARAMS = ("auth_token", *SECRET_HEADERS)
DEFAULT_TIMEOUT = 30.0


def _common(method: str) -> dict[str, ParameterDef]:
    return {
        "method": ParameterDef(type="str", default=method, description="HTTP method"),
        "headers": ParameterDef(type="dict", description="Request headers (credentials in them are masked)"),
        "auth_token": ParameterDef(type="str", description="Sent as 'Authorization: Bearer <token>'"),
        "expected_status": ParameterDef(
            type="any", default=200, description="Status (or list of statuses) that counts as success"
        ),
        "timeout": ParameterDef(type="float", default=DEFAULT_TIMEOUT, description="Seconds"),
        "base_url": ParameterDef(type="str", description="Prefix for a relative URL (else plugin_config)"),
    }


class HttpPlugin(Plugin):
    def __init__(self) -> None:
        self.config: dict[str, Any] = {}

    def get_metadata(self) -> PluginMetadata:
        return PluginMetadata(
            name="http",
            version="1.0.0",
            author="playbook-nb",
            description="HTTP requests (OPS-001 data_fetch and api_call): status check, JSON body as result",
            functions={
                "fetch": FunctionSignature(
                    name="fetch",
                    description="GET a URL and return its JSON body (data_fetch)",
                    parameters={
                        "source_url": ParameterDef(type="str", description="URL to fetch"),
                        "url": ParameterDef(type="str", description="Same as source_url"),
                        "params": ParameterDef(type="dict", description="Query string parameters"),
                        **_common("GET"),
                    },
                    returns="the response body (JSON, else text)",
                    secret_params=SECRET_PARAMS,
                ),
                "call": FunctionSignature(
                    name="call",
                    description="Call a REST or GraphQL endpoint (api_call)",
                    parameters={
                        "endpoint": ParameterDef(type="str", description="URL or path below base_url"),
                        "url": ParameterDef(type="str", description="Same as endpoint"),
                        "query": ParameterDef(type="str", description="GraphQL query text or .graphql file"),
                        "variables": ParameterDef(type="dict", description="GraphQL variables"),
                        "json": ParameterDef(type="any", description="JSON body (REST)"),
                        **_common("POST"),
                    },
                    returns="the response body (JSON, else text)",
                    secret_params=SECRET_PARAMS,
                    extra_parameters=ParameterDef(type="any", description="GraphQL variables / body fields"),
                ),
            },
        )

    def initialize(self, config: dict[str, Any]) -> None:
        self.config = dict(config or {})

    def rehearses(self, spec: dict[str, Any]) -> bool:
        return "response" in spec

    def execute(self, function_name: str, params: dict[str, Any]) -> Any:
        if function_name not in ("fetch", "call"):
            raise PluginError(f"plugin 'http' has no function '{function_name}' (available: call, fetch)")
        request = self._build(function_name, dict(params))
        return self._send(request, params)

    def cleanup(self) -> None:
        pass

    # ---- building the request -----------------------------------------------------------------------
    def _build(self, function: str, params: dict[str, Any]) -> dict[str, Any]:
        if function == "fetch":
            target = params.pop("source_url", None) or params.pop("url", None)
            what = "source_url"
        else:
            target = params.pop("endpoint", None) or params.pop("url", None)
            what = "endpoint"
        if not target:
            raise PluginError(f"plugin 'http', function '{function}': missing required parameter '{what}'")
        url = self._absolute(str(target), params.pop("base_url", None), what)
        headers = {str(k): str(v) for k, v in (params.pop("headers", None) or {}).items()}
        token = params.pop("auth_token", None)
        if token:
            headers.setdefault("Authorization", f"Bearer {token}")
        request: dict[str, Any] = {
            "method": str(params.pop("method")).upper(),
            "url": url,
            "headers": headers,
            "timeout": float(params.pop("timeout", DEFAULT_TIMEOUT)),
        }
        params.pop("expected_status", None)
        if function == "fetch":
            if params.get("params"):
                request["params"] = params["params"]
            return request
        query = params.pop("query", None)
        variables = dict(params.pop("variables", None) or {})
        body = params.pop("json", None)
        if query is not None:
            variables.update(params)  # undeclared parameters are the query's variables
            request["json"] = {"query": self._query_text(str(query)), "variables": variables}
        elif body is not None:
            request["json"] = body
        elif params:
            request["json"] = params
        return request

    def _absolute(self, target: str, base: str | None, what: str) -> str:
        if "://" in target:
            return target
        base = base or self.config.get("base_url")
        if not base:
            raise PluginError(
                f"plugin 'http': {what} '{target}' is relative; give base_url (a parameter, or "
                "[runbook.plugin_config.http] base_url)"
            )
        return str(base).rstrip("/") + "/" + target.lstrip("/")

    def _query_text(self, query: str) -> str:
        if query.strip().endswith(".graphql") and "\n" not in query:
            path = self.context.resolve(query.strip()) if self.context else None
            if path is None or not path.is_file():
                raise PluginError(f"plugin 'http': GraphQL query file '{query}' not found (looked at {path})")
            return path.read_text(encoding="utf-8")
        return query

    # ---- sending ------------------------------------------------------------------------------------
    def _send(self, request: dict[str, Any], params: dict[str, Any]) -> Any:
        expected = params.get("expected_status", 200)
        allowed = {int(s) for s in (expected if isinstance(expected, list) else [expected])}
        shown = f"{request['method']} {request['url']}"
        print(shown + "".join(f"\n  {k}: {_shown_header(k, v)}" for k, v in request["headers"].items()))
        started = time.monotonic()
        rehearsal = self.context.rehearsal if self.context else None
        if rehearsal is not None:
            status, body, content_type = _fixture_response(rehearsal.get("response"))
            source = "rehearsal: answered by the fixture"
        else:
            status, body, content_type = _real_response(request)
            source = f"{(time.monotonic() - started) * 1000:.0f} ms"
        value = _decode(body, content_type)
        size = len(body) if isinstance(body, bytes | str) else 0
        print(f"-> {status} ({size} bytes, {source})")
        if status not in allowed:
            wanted = ", ".join(str(s) for s in sorted(allowed))
            raise HttpStatusError(f"{shown} answered {status}, expected {wanted}: {_snippet(value)}")
        if isinstance(request.get("json"), dict) and "query" in request["json"]:
            errors = value.get("errors") if isinstance(value, dict) else None
            if errors:
                raise HttpStatusError(f"{shown}: GraphQL errors: {_snippet(errors)}")
        return value


class HttpStatusError(RuntimeError):
    """The server answered, but not as the step expects (a one-line failure, no traceback)."""

    show_traceback = False


def _shown_header(name: str, value: str) -> str:
    import fnmatch

    lowered = f"headers.{name}".lower()
    return MASK if any(fnmatch.fnmatchcase(lowered, p) for p in SECRET_HEADERS) else value


def _real_response(request: dict[str, Any]) -> tuple[int, bytes, str]:
    import httpx

    try:
        response = httpx.request(
            request["method"],
            request["url"],
            headers=request["headers"],
            params=request.get("params"),
            json=request.get("json"),
            timeout=request["timeout"],
        )
    except httpx.HTTPError as err:
        raise HttpStatusError(f"{request['method']} {request['url']}: {type(err).__name__}: {err}") from None
    return response.status_code, response.content, response.headers.get("content-type", "")


def _fixture_response(spec: Any) -> tuple[int, Any, str]:
    if not isinstance(spec, dict):
        raise PluginError("rehearsal: the fixture's response must be a table (status, json or body)")
    status = int(spec.get("status", 200))
    if "json" in spec:
        return status, json.dumps(spec["json"]).encode(), "application/json"
    return status, str(spec.get("body", "")).encode(), str(spec.get("content_type", "text/plain"))


def _decode(body: bytes, content_type: str) -> Any:
    text = body.decode("utf-8", "replace")
    if "json" in content_type or text[:1] in ("{", "["):
        try:
            return json.loads(text)
        except ValueError:
            pass
    return text


def _snippet(value: Any, limit: int = 200) -> str:
    text = value if isinstance(value, str) else json.dumps(value, default=str)
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 3] + "..."
