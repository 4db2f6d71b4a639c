"""Token counting for the context budget.

Packing needs a token count for every piece it considers, many times per keystroke.
With a model loaded we count with its own tokenizer, behind a cache (most pieces are
the same from one keystroke to the next); without one we use `estimate_tokens`.

The estimate is ``ceil(utf8_bytes / 3.2)``. Calibrated against the Qwen3.6 tokenizer
(248K-token BPE, the one Qwen3.6-27B ships) on 20-line chunks of Django 5.1 and CPython
sources, JavaScript and C headers: it over-counts by 6 % (C headers), 11 % (Python)
and under-counts JavaScript by 8 % in total; single chunks range from about 0.5x
(non-Latin string literals) to 1.6x. docs/context.md has the figures and the method.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from typing import Any

from cachetools import LRUCache

log = logging.getLogger(__name__)

TokenCounter = Callable[[str], int]
"""Anything that maps a text to its number of tokens."""

BYTES_PER_TOKEN = 3.2


def estimate_tokens(text: str) -> int:
    """Estimate the token count of `text` as ``ceil(utf8_bytes / 3.2)``.

    Used when no model is loaded. It is additive within rounding: the estimate of a
    concatenation never exceeds the sum of the estimates of its parts, so a budget
    enforced on parts holds for the whole.
    """
    # str.isascii() is O(1) in CPython; only non-ASCII text pays for the encode.
    size = len(text) if text.isascii() else len(text.encode("utf-8", "surrogatepass"))
    return (size * 5 + 15) // 16  # == ceil(size / 3.2) in integers


class CachedTokenCounter:
    """Wrap a (slow) tokenizer with a thread-safe LRU keyed by the text itself.

    Keys are the strings, so equal texts hit whatever object holds them, and a hash
    collision can never return a wrong count (dicts compare keys on collision). The
    cache is bounded by the characters it holds, not by its entry count, because the
    pieces range from one line to whole files.
    """

    def __init__(self, count: TokenCounter, *, max_chars: int = 8_000_000) -> None:
        self._count = count
        self._lock = threading.Lock()
        # Values are (size in characters, count): cachetools sizes entries by value.
        self._cache: LRUCache[str, tuple[int, int]] = LRUCache(
            maxsize=max_chars, getsizeof=_entry_size
        )
        self.hits = 0
        self.misses = 0

    def __call__(self, text: str) -> int:
        with self._lock:
            entry = self._cache.get(text)
            if entry is not None:
                self.hits += 1
                return entry[1]
        # Tokenize outside the lock: a long text must not stall other threads.
        value = self._count(text)
        size = len(text) + 1
        with self._lock:
            self.misses += 1
            if size <= self._cache.maxsize:
                self._cache[text] = (size, value)
        return value

    def clear(self) -> None:
        """Forget every cached count (e.g. when the model changes)."""
        with self._lock:
            self._cache.clear()


def _entry_size(entry: tuple[int, int]) -> int:
    return entry[0]


def llama_token_counter(llama: Any) -> TokenCounter:
    """Count tokens with a loaded `llama_cpp.Llama` (a vocab-only one is enough).

    Special tokens are tokenized as plain text (``special=False``), which over-counts
    the few markers such as ``<|file_sep|>``: safe for a budget.
    """

    def count(text: str) -> int:
        return len(llama.tokenize(text.encode("utf-8"), add_bos=False, special=False))

    return count
