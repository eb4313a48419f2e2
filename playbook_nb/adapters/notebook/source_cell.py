"""The runbook-source cell: `RUNBOOK_TOML = <literal>` holding the exact runbook text."""

from __future__ import annotations

import ast

SOURCE_VARIABLE = "RUNBOOK_TOML"


def _raw_triple_quoted(text: str, quote: str) -> str | None:
    """`r'''text'''` (or with double quotes) when that literal spells `text` exactly, else None."""
    fence = quote * 3
    if fence in text or text.endswith((quote, "\\")):
        return None
    # Python normalises line endings inside literals; other control characters are hard to read anyway.
    if any(ch != "\n" and ch != "\t" and not ch.isprintable() for ch in text):
        return None
    return f"r{fence}{text}{fence}"


def python_string_literal(text: str) -> str:
    """A Python literal evaluating to exactly `text`: a raw triple-quoted string when possible, else repr."""
    for quote in ("'", '"'):
        literal = _raw_triple_quoted(text, quote)
        if literal is not None:
            try:
                if ast.literal_eval(literal) == text:
                    return literal
            except (SyntaxError, ValueError):
                pass
    return repr(text)
