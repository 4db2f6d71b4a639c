"""Secrets stay in the file they are in: redaction of context blocks, and secret files.

Context blocks carry other files' code into the prompt of the file being edited, and
with a serving engine (`model.backend` `openai`) to another machine. Before a block
enters any prompt, what looks like a secret is replaced by ``<redacted>``:

- private key blocks (``-----BEGIN … PRIVATE KEY-----`` to its end);
- token formats with a fixed shape (cloud, VCS, chat and payment providers, JWTs);
- assignments to a name that says secret (``password``, ``token``, ``api_key``,
  ``secret``, …) of a literal value that looks random (≥ 8 characters, ≥ 3 bits of
  entropy per character, letters with digits or a mix of cases that is no word), so
  ``password = get_password()`` and
  ``TOKEN_HEADER = "Authorization"`` stay as they are;
- whatever matches the user's own patterns (``context.redactPatterns``).

The replacement is deterministic, so a block redacted at one keystroke is the same at
the next (the prompt's stable part does not move).
"""

from __future__ import annotations

import fnmatch
import functools
import logging
import math
import os
import re
from collections import Counter
from collections.abc import Sequence

log = logging.getLogger(__name__)

REDACTED = "<redacted>"

_KEY_BLOCK = re.compile(
    r"-----BEGIN ([A-Z0-9 ]*PRIVATE KEY[A-Z0-9 ]*)-----.*?(?:-----END \1-----|\Z)", re.DOTALL
)
_TOKENS = re.compile(
    "|".join(
        (
            r"\b(?:AKIA|ASIA)[0-9A-Z]{16}\b",  # AWS access key id
            r"\bgh[pousr]_[A-Za-z0-9]{36,}\b",  # GitHub
            r"\bgithub_pat_[A-Za-z0-9_]{22,}\b",
            r"\bglpat-[A-Za-z0-9_-]{20,}\b",  # GitLab
            r"\bxox[abprs]-[A-Za-z0-9-]{10,}\b",  # Slack
            r"\b[rs]k_(?:live|test)_[A-Za-z0-9]{16,}\b",  # Stripe
            r"\bAIza[0-9A-Za-z_-]{35}\b",  # Google API key
            r"\bsk-(?:proj-|ant-)?[A-Za-z0-9_-]{20,}\b",  # OpenAI, Anthropic
            r"\bnpm_[A-Za-z0-9]{36}\b",  # npm
            r"\bhf_[A-Za-z0-9]{30,}\b",  # Hugging Face
            r"\beyJ[A-Za-z0-9_-]{10,}\.eyJ[A-Za-z0-9_-]{10,}\.[A-Za-z0-9_-]{10,}",  # JWT
        )
    )
)
# NAME = "value", NAME: 'value', export NAME=value, "name": "value", --password value
_ASSIGNMENT = re.compile(
    r"""(?ix)
    (?P<name>[A-Za-z0-9_.-]*
        (?:passw(?:or)?d|pwd|secret|token|api[_-]?key|apikey|access[_-]?key|private[_-]?key
           |auth[_-]?key|credentials?|client[_-]?secret)
        [A-Za-z0-9_.-]*)
    (?P<sep>["']?\s*(?:[:=]|:=|=>)\s*|\s+)
    (?P<quote>["'`]?)
    (?P<value>[^\s"'`(){}\[\]$<>,;]{8,})
    (?P=quote)
    """
)
# A secret-looking file is never completed through a serving engine: its text would be
# sent whole (it is the current file, which is never redacted).
SECRET_FILE_PATTERNS = (
    ".env",
    ".env.*",
    "*.env",
    "*.pem",
    "*.key",
    "*.p12",
    "*.pfx",
    "id_rsa*",
    "id_dsa*",
    "id_ecdsa*",
    "id_ed25519*",
    "credentials*",
    "secrets*",
    "*.secrets",
    ".npmrc",
    ".pypirc",
    ".netrc",
    ".git-credentials",
    ".htpasswd",
)


def _entropy(value: str) -> float:
    counts = Counter(value)
    n = len(value)
    return -sum(c / n * math.log2(c / n) for c in counts.values())


def _random_looking(value: str) -> bool:
    if len(value) < 8 or _entropy(value) < 3.0:
        return False
    letters = any(c.isalpha() for c in value)
    digits = any(c.isdigit() for c in value)
    upper = sum(c.isupper() for c in value)
    lower = sum(c.islower() for c in value)
    # Words are not random: `Authorization`, `BearerToken`, `snake_case_name`.
    words = bool(re.fullmatch(r"[A-Za-z][a-z]*(?:[A-Z_-]?[A-Za-z][a-z]+)*", value))
    mixed = upper >= 2 and lower >= 2 and not words
    # A dotted name or a path is a reference, not a value (`settings.SECRET_KEY`).
    reference = bool(re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*(?:[./][A-Za-z_][A-Za-z0-9_]*)+", value))
    return ((letters and digits) or mixed) and not reference


def _assignment(match: re.Match[str]) -> str:
    value = match.group("value")
    if not _random_looking(value):
        return match.group(0)
    start = match.start("value") - match.start()
    return match.group(0)[:start] + REDACTED + match.group(0)[start + len(value) :]


@functools.lru_cache(maxsize=64)
def _user_patterns(patterns: tuple[str, ...]) -> re.Pattern[str] | None:
    valid = []
    for pattern in patterns:
        try:
            re.compile(pattern)
        except re.error as exc:
            log.warning("context.redactPatterns: %r is not a regular expression (%s)", pattern, exc)
            continue
        valid.append(f"(?:{pattern})")
    return re.compile("|".join(valid)) if valid else None


def redact(text: str, patterns: Sequence[str] = ()) -> str:
    """`text` with what looks like a secret replaced by ``<redacted>``. Context blocks
    repeat from one keystroke to the next: each is redacted once."""
    return _redact(text, tuple(patterns))


@functools.lru_cache(maxsize=512)
def _redact(text: str, patterns: tuple[str, ...]) -> str:
    if "PRIVATE KEY" in text:
        text = _KEY_BLOCK.sub(
            lambda m: f"-----BEGIN {m.group(1)}-----{REDACTED}-----END {m.group(1)}-----", text
        )
    text = _TOKENS.sub(REDACTED, text)
    text = _ASSIGNMENT.sub(_assignment, text)
    extra = _user_patterns(patterns)
    if extra is not None:
        text = extra.sub(REDACTED, text)
    return text


def is_secret_file(path: str) -> bool:
    """Whether the file's name marks it as holding secrets (``.env``, ``id_rsa``, …)."""
    name = os.path.basename(path)
    return any(fnmatch.fnmatchcase(name, pattern) for pattern in SECRET_FILE_PATTERNS)
