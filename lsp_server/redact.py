"""Keeping the API key out of every log line, message and answer.

Three nets, because a key reaches text in many shapes: the values the settings hold as
keys are remembered and replaced wherever they appear (whatever the words around them);
``apiKey``/``api_key`` followed by a value is cut up to the value's real end (a quoted
string up to its closing quote, a list or object whole); and a URL's query, where some
serving engines take the key (``?key=…``), is never shown (`shown_url`).
"""

from __future__ import annotations

import re
import threading
import urllib.parse

_lock = threading.Lock()
_secrets: set[str] = set()

_API_KEY = re.compile(
    r"""((?:'|"|\b)api_?key(?:'|")?\s*[:=]\s*)"""
    r"""("(?:[^"\\]|\\.)*"?|'(?:[^'\\]|\\.)*'?|\[[^\]]*\]?|\{[^}]*\}?|[^\s,;&]+)""",
    re.I,
)
_URL_QUERY = re.compile(r"""(\bhttps?://[^\s?#'"]*)\?[^\s#'"]*""", re.I)
MIN_REMEMBERED = 4  # shorter values would blank out ordinary words


def remember(value: object) -> None:
    """Hide ``value`` (and, for a list or an object, each string in it) from now on."""
    for text in _strings(value):
        if len(text) >= MIN_REMEMBERED:
            with _lock:
                _secrets.add(text)


def _strings(value: object) -> list[str]:
    if isinstance(value, str):
        return [value, repr(value)[1:-1]]
    if isinstance(value, (list, tuple)):
        return [s for v in value for s in _strings(v)] + [repr(value)]
    if isinstance(value, dict):
        return [s for v in (*value.keys(), *value.values()) for s in _strings(v)] + [repr(value)]
    return [str(value)] if value is not None else []


def redact(text: str) -> str:
    """``text`` without any API key in it."""
    with _lock:
        secrets = sorted(_secrets, key=len, reverse=True)
    for secret in secrets:
        if secret in text:
            text = text.replace(secret, "***")
    if "key" in text.lower():
        text = _API_KEY.sub(r"\1***", text)
    if "?" in text:
        text = _URL_QUERY.sub(r"\1?***", text)
    return text


def shown_url(url: str) -> str:
    """``url`` as messages, logs and stats show it: no query, no fragment, no user."""
    try:
        parts = urllib.parse.urlsplit(url.strip())
    except ValueError:
        return "(an invalid URL)"
    host = parts.hostname or ""
    if ":" in host:
        host = f"[{host}]"
    try:
        port = f":{parts.port}" if parts.port else ""
    except ValueError:
        port = ""
    shown = urllib.parse.urlunsplit((parts.scheme, host + port, parts.path, "", ""))
    return shown + ("?***" if parts.query else "")
