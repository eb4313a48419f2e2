"""What went over a page's kernel websockets, for the report of a failed browser test.

A failure such as a kernel still "Busy" on screen, or a widget that never heard its answer, is either what the
kernel sent or what the page did not get to; the messages on the wire tell which. Each one is kept as a line:
seconds since the socket opened, kernel, direction (`<-` from the kernel), channel, type, its id and its
parent's, the subshell it was sent to, and for comms the comm, method and our cockpit's fields.
"""

from __future__ import annotations

import json
import struct
import time
from collections import Counter
from pathlib import Path
from typing import Any

COCKPIT_FIELDS = ("view", "ready", "hello", "found", "search", "bye")


def parse_frame(payload: bytes | str) -> dict[str, Any]:
    """A Jupyter kernel websocket message as a dict (channel, header, parent_header, content): the
    `v1.kernel.websocket.jupyter.org` binary framing or the legacy JSON text."""
    if isinstance(payload, str):
        return json.loads(payload)
    (count,) = struct.unpack_from("<Q", payload, 0)
    offsets = list(struct.unpack_from(f"<{count}Q", payload, 8))
    parts = [payload[start:end] for start, end in zip(offsets, [*offsets[1:], len(payload)], strict=True)]
    names = ("channel", "header", "parent_header", "metadata", "content")
    message: dict[str, Any] = {"channel": parts[0].decode()}
    for name, part in zip(names[1:], parts[1:5], strict=False):
        message[name] = json.loads(part) if part else {}
    return message


def summary(message: dict[str, Any]) -> str:
    header, parent, content = (
        message.get("header", {}),
        message.get("parent_header", {}),
        message.get("content", {}),
    )
    words = [
        str(message.get("channel", "?")),
        str(header.get("msg_type", "?")),
        f"id={str(header.get('msg_id', ''))[-8:]}",
    ]
    if parent.get("msg_id"):
        words.append(f"parent={str(parent['msg_id'])[-8:]}:{parent.get('msg_type', '')}")
    subshell = header.get("subshell_id") or parent.get("subshell_id")
    if subshell:
        words.append(f"subshell={str(subshell)[:8]}")
    if "execution_state" in content:
        words.append(str(content["execution_state"]))
    if "comm_id" in content:
        words.append(f"comm={str(content['comm_id'])[:8]}")
        data = content.get("data") or {}
        if isinstance(data, dict):
            if "method" in data:
                words.append(str(data["method"]))
            state = data.get("state")
            if isinstance(state, dict):
                words.append("state=" + ",".join(sorted(state))[:60])
            inner = data.get("content")
            if isinstance(inner, dict):
                words += [f"{k}={str(inner[k])[:20]}" for k in COCKPIT_FIELDS if k in inner]
    if "subshell_id" in content:
        words.append(f"subshell={str(content['subshell_id'])[:8]}")
    return " ".join(words)


class KernelFrames:
    """Every message on the kernel websockets of one page."""

    def __init__(self) -> None:
        self.lines: list[str] = []
        self.counts: Counter[str] = Counter()

    def watch(self, ws) -> None:
        if "/api/kernels/" not in ws.url:
            return
        kernel = ws.url.split("/api/kernels/", 1)[1][:8]
        start = time.monotonic()

        def record(direction: str, payload) -> None:
            try:
                message = parse_frame(payload)
                text = summary(message)
                kind = message.get("header", {}).get("msg_type", "?")
            except Exception as err:  # a frame we cannot read is reported as such, never fatal
                text, kind = f"(unreadable frame: {err})", "?"
            self.counts[f"{direction} {kind}"] += 1
            self.lines.append(f"{time.monotonic() - start:8.3f}s {kernel} {direction} {text}")

        ws.on("framereceived", lambda payload: record("<-", payload))
        ws.on("framesent", lambda payload: record("->", payload))
        ws.on("close", lambda _ws: self.lines.append(f"{time.monotonic() - start:8.3f}s {kernel} closed"))

    def report(self, into: Path, tail: int = 40) -> list[str]:
        """Lines for a failure report: all messages written to `into`, the last `tail` of them and the counts."""
        into.write_text("\n".join(self.lines) + "\n")
        return [
            f"kernel websocket: {len(self.lines)} messages, all in {into}; the last {tail} (<- from the kernel):",
            *self.lines[-tail:],
            "kernel websocket messages by direction and type:",
            *(f"{n:6d} {what}" for what, n in sorted(self.counts.items())),
        ]
