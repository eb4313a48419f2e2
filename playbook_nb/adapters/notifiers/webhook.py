"""Built-in notifiers over HTTP POST: a generic JSON webhook, and Slack-compatible incoming webhooks (Slack,
Mattermost, Rocket.Chat, Teams' Slack-compatible connector)."""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from typing import Any
from urllib.parse import urlsplit

from playbook_nb.adapters.notifiers.base import NotifierError

USER_AGENT = "playbook-nb notifier"


def shown_url(url: str) -> str:
    """The URL as logs may show it: scheme and host only (a webhook's path and query are its secret)."""
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.hostname or ''}{f':{parts.port}' if parts.port else ''}/…"


def post_json(url: str, body: dict[str, Any], timeout: float, headers: dict[str, str] | None = None) -> None:
    data = json.dumps(body, ensure_ascii=False, default=str).encode()
    request = urllib.request.Request(
        url,
        data=data,
        method="POST",
        headers={"Content-Type": "application/json", "User-Agent": USER_AGENT, **(headers or {})},
    )
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            response.read()
    except urllib.error.HTTPError as err:
        raise NotifierError(f"{shown_url(url)} answered HTTP {err.code}") from None
    except (urllib.error.URLError, OSError) as err:
        reason = getattr(err, "reason", err)
        raise NotifierError(f"{shown_url(url)} unreachable: {reason}") from None


def _check_url(url: Any, name: str) -> str:
    if not isinstance(url, str) or urlsplit(url).scheme not in ("http", "https"):
        raise ValueError(f"notifier {name}: url must be an http(s) URL")
    return url


class WebhookNotifier:
    """POSTs the message as it is (JSON): run, node, event, what is waited for, a link to the run."""

    def __init__(self, url: str, timeout: float = 5.0, headers: dict[str, str] | None = None):
        self.url = _check_url(url, "webhook")
        self.timeout = float(timeout)
        self.headers = dict(headers or {})

    def send(self, message: dict[str, Any]) -> None:
        post_json(self.url, message, self.timeout, self.headers)


class SlackNotifier:
    """A Slack-compatible incoming webhook: `{"text": ...}` with the message in one or two lines (mrkdwn)."""

    def __init__(self, url: str, timeout: float = 5.0, channel: str | None = None):
        self.url = _check_url(url, "slack")
        self.timeout = float(timeout)
        self.channel = channel

    def send(self, message: dict[str, Any]) -> None:
        body: dict[str, Any] = {"text": slack_text(message)}
        if self.channel:
            body["channel"] = self.channel
        post_json(self.url, body, self.timeout)


def slack_text(message: dict[str, Any]) -> str:
    link = message.get("link")
    title = f"<{link}|{message['title']}>" if link else message["title"]
    return f"*{message['summary']}*\n{title} (run {message['run_id']})"
