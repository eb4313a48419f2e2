"""Real HTTP servers on 127.0.0.1 for the step-type tests: started by a test, stopped by it (threads of the
test process, bound to a free port; `with` stops them).

- `EntityApi`: a small REST + GraphQL application (GET /entities behind a bearer token or X-Api-Key, POST /graphql that
  enriches the entities it is given), recording every request it saw.
- `PageServer`: serves HTML pages from a dict (a test changes a page to make a visual regression).
- `PushgatewayRecorder`: answers like a Prometheus Pushgateway (PUT/POST/DELETE /metrics/job/...) and records
  each push: method, path, headers and the exposition text.
"""

from __future__ import annotations

import json
import threading
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


@dataclass
class Recorded:
    method: str
    path: str
    headers: dict[str, str]
    body: bytes

    @property
    def text(self) -> str:
        return self.body.decode("utf-8", "replace")


class _Server:
    """A ThreadingHTTPServer on a free 127.0.0.1 port whose requests go to `self.handle`."""

    def __init__(self) -> None:
        self.requests: list[Recorded] = []
        owner = self

        class Handler(BaseHTTPRequestHandler):
            def _any(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else b""
                seen = Recorded(self.command, self.path, dict(self.headers.items()), body)
                owner.requests.append(seen)
                status, content_type, payload = owner.handle(seen)
                data = payload if isinstance(payload, bytes) else payload.encode()
                self.send_response(status)
                self.send_header("Content-Type", content_type)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            do_GET = do_POST = do_PUT = do_DELETE = _any

            def log_message(self, *args: Any) -> None:  # keep test output clean
                pass

        self._httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._httpd.daemon_threads = True
        # a short poll interval: stopping the server (shutdown) waits for the loop's next poll
        self._thread = threading.Thread(target=self._httpd.serve_forever, args=(0.05,), daemon=True)

    @property
    def url(self) -> str:
        host, port = self._httpd.server_address[:2]
        return f"http://{host}:{port}"

    def handle(self, request: Recorded) -> tuple[int, str, bytes | str]:
        raise NotImplementedError

    def __enter__(self):
        self._thread.start()
        return self

    def __exit__(self, *exc: Any) -> None:
        self._httpd.shutdown()
        self._httpd.server_close()
        self._thread.join(5)


@dataclass
class EntityApi(_Server):
    token: str = "s3cr3t-token-value"
    entities: list[dict[str, Any]] = field(default_factory=list)

    def __post_init__(self) -> None:
        super().__init__()

    def handle(self, request: Recorded) -> tuple[int, str, bytes | str]:
        path = request.path.split("?")[0]
        if path == "/entities" and request.method == "GET":
            if request.headers.get("Authorization") != f"Bearer {self.token}" and (
                request.headers.get("X-Api-Key") != self.token
            ):
                return 401, "application/json", json.dumps({"error": "unauthorized"})
            return 200, "application/json", json.dumps({"data": {"entities": self.entities}})
        if path == "/graphql" and request.method == "POST":
            body = json.loads(request.body or b"{}")
            given = (body.get("variables") or {}).get("entities") or []
            if "enrichEntities" not in body.get("query", ""):
                return 200, "application/json", json.dumps({"errors": [{"message": "unknown query"}]})
            enriched = [{**e, "risk": len(str(e.get("name", "")))} for e in given]
            return 200, "application/json", json.dumps({"data": {"enrichEntities": enriched}})
        if path.startswith("/status/"):
            return int(path.rsplit("/", 1)[1]), "text/plain", "as asked"
        return 404, "text/plain", "not found"


@dataclass
class PageServer(_Server):
    pages: dict[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        super().__init__()

    def handle(self, request: Recorded) -> tuple[int, str, bytes | str]:
        page = self.pages.get(request.path.split("?")[0])
        if page is None:
            return 404, "text/plain", "no such page"
        return 200, "text/html; charset=utf-8", page


class PushgatewayRecorder(_Server):
    def handle(self, request: Recorded) -> tuple[int, str, bytes | str]:
        if request.path.startswith("/metrics/job/") and request.method in ("PUT", "POST", "DELETE"):
            return 200, "text/plain", ""
        return 404, "text/plain", "not a pushgateway path"

    @property
    def pushes(self) -> list[Recorded]:
        return [r for r in self.requests if r.path.startswith("/metrics/job/")]


def entity_page(rows: list[str], *, title: str = "Entities", colour: str = "#2b6cb0") -> str:
    """A small, deterministic page with an #entity-list element (system fonts, no animation)."""
    items = "".join(f"<li>{row}</li>" for row in rows)
    return (
        "<!doctype html><html><head><style>"
        "body{margin:0;font-family:'DejaVu Sans',sans-serif;background:#fff}"
        f"#entity-list{{width:320px;padding:12px;border:2px solid {colour}}}"
        f"h1{{font-size:18px;color:{colour};margin:0 0 8px}}li{{font-size:14px;line-height:20px}}"
        f"</style></head><body><div id='entity-list'><h1>{title}</h1><ul>{items}</ul></div></body></html>"
    )
