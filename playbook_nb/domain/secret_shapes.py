"""Well-known secret shapes nobody declared: cloud keys, tokens, private keys a command printed.

The shapes are detect-secrets' pattern plugins (the regular expressions its maintainers keep up to date),
only those whose patterns are specific enough to run over any output without false alarms: AWS, Azure
storage, basic-auth URLs, Discord, GitHub, GitLab, JWT, npm, OpenAI, PyPI, SendGrid, Slack, Square, Stripe,
Telegram and Twilio. Its entropy and keyword heuristics, and the IBM, SoftLayer, Cloudant, Artifactory and
Mailchimp patterns, would flag hashes and ordinary words, and are left out. A PEM private key block is masked
from BEGIN to END (detect-secrets only spots its header).

`find(text)` gives the spans to mask; `Redactor(..., shapes=True)` masks them, `scan` reports them.
"""

from __future__ import annotations

import re
from functools import lru_cache

# detect-secrets plugin module -> class; the group-1 ones hold the secret in group 1 (the rest of the match is
# context: "https://user:" or "aws_secret_access_key = '"), the others are the secret whole.
PLUGINS = {
    "aws": "AWSKeyDetector",
    "azure_storage_key": "AzureStorageKeyDetector",
    "basic_auth": "BasicAuthDetector",
    "discord": "DiscordBotTokenDetector",
    "github_token": "GitHubTokenDetector",
    "gitlab_token": "GitLabTokenDetector",
    "jwt": "JwtTokenDetector",
    "npm": "NpmDetector",
    "openai": "OpenAIDetector",
    "pypi_token": "PypiTokenDetector",
    "sendgrid": "SendGridDetector",
    "slack": "SlackDetector",
    "square_oauth": "SquareOAuthDetector",
    "stripe": "StripeDetector",
    "telegram_token": "TelegramBotTokenDetector",
    "twilio": "TwilioKeyDetector",
}
GROUP_ONE = {"AWSKeyDetector", "BasicAuthDetector", "NpmDetector"}

PEM_PRIVATE_KEY = re.compile(
    r"-----BEGIN ((?:[A-Z0-9]+ )*PRIVATE KEY(?: BLOCK)?)-----[\s\S]*?(?:-----END \1-----|\Z)"
)
MIN_JWT_LENGTH = 40  # "eyJ" + a header and a payload: shorter matches are words that happen to start so
# A match inside a long run of base64 (an embedded PNG in a notebook, a data: URL) is chance, not a secret: a
# key a command printed stands apart from its neighbours.
BASE64 = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/=")
BLOB_LENGTH = 200
MIN_SPAN = 8  # a shorter match is never a secret (the PEM block is longer too): shorter texts are not scanned


def _inside_a_blob(text: str, start: int, end: int) -> bool:
    if start == 0 or end >= len(text) or text[start - 1] not in BASE64 or text[end] not in BASE64:
        return False
    left = start
    while left > 0 and text[left - 1] in BASE64 and start - left < BLOB_LENGTH:
        left -= 1
    right = end
    while right < len(text) and text[right] in BASE64 and right - end < BLOB_LENGTH:
        right += 1
    return right - left >= BLOB_LENGTH


@lru_cache(maxsize=1)
def _patterns() -> tuple[tuple[str, re.Pattern[str], bool], ...]:
    """(secret type, pattern, the secret is group 1) of every plugin kept; detect-secrets is imported once,
    on first use (not when a command starts)."""
    import importlib

    found = []
    for module, name in PLUGINS.items():
        plugin = getattr(importlib.import_module(f"detect_secrets.plugins.{module}"), name)
        for pattern in plugin.denylist:
            found.append((plugin.secret_type, pattern, name in GROUP_ONE and pattern.groups >= 1))
    return tuple(found)


def find(text: str) -> list[tuple[int, int, str]]:
    """(start, end, secret type) of every well-known secret shape in `text`, not overlapping, in order."""
    if len(text) < MIN_SPAN:  # no shape fits (a state, a key, an empty output): skip the ~30 patterns
        return []
    spans: list[tuple[int, int, str]] = [
        (m.start(), m.end(), "Private Key") for m in PEM_PRIVATE_KEY.finditer(text)
    ]
    for kind, pattern, group_one in _patterns():
        for match in pattern.finditer(text):
            start, end = match.span(1) if group_one else match.span()
            if start < 0 or end - start < MIN_SPAN:
                continue
            if kind == "JSON Web Token" and end - start < MIN_JWT_LENGTH:
                continue
            if _inside_a_blob(text, *match.span()):
                continue
            spans.append((start, end, kind))
    spans.sort()
    kept: list[tuple[int, int, str]] = []
    for span in spans:
        if kept and span[0] < kept[-1][1]:  # overlaps the previous one: merge
            kept[-1] = (kept[-1][0], max(kept[-1][1], span[1]), kept[-1][2])
        else:
            kept.append(span)
    return kept


def mask(text: str, replacement: str) -> str:
    """`text` with every well-known secret shape replaced."""
    spans = find(text)
    if not spans:
        return text
    parts, last = [], 0
    for start, end, _kind in spans:
        parts.append(text[last:start])
        parts.append(replacement)
        last = end
    parts.append(text[last:])
    return "".join(parts)
