"""Saved recurrent state at chosen prompt positions, in an LRU bounded by bytes.

A hybrid model (Qwen3.6: Gated DeltaNet + attention) cannot roll its recurrent layers
back: the only way to resume at an earlier position is to restore their state as it was
there. A checkpoint is that state (llama.cpp's partial sequence state), keyed by the
exact token prefix it was computed from: `(n, hash(tokens[:n]))`, so it is never
restored onto another prefix, whatever happened in between.

Memory: Qwen3.6-27B's recurrent state is about 157 MB per checkpoint in f32 (48
DeltaNet layers), so the default bound of 2048 MB holds about 13 of them.

Two kinds share the bound. *Anchors* sit at the ends of the prompt's stable blocks (what
a jump, a switch back or a refresh resumes from); *line* checkpoints sit at line ends of
the cursor window (what typing resumes from) and are saved at nearly every request. With
one LRU the line checkpoints of a few lines of typing evicted every anchor, and the next
jump evaluated the whole prompt; so line checkpoints are evicted first while anchors hold
at most half the bytes, each kind least recently used first.

Among anchors, those *covered* by a deeper anchor of the same prefix (an earlier block's
end, when the prompt's last stable block's end is kept too) go first: each prompt keeps
its deepest anchor while room allows one per prompt. With plain LRU, the dozen block
ends of another file's prompt (at a 64K budget) evicted every anchor of the first file's,
and switching back evaluated its whole prompt (46K tokens); the deepest anchor alone
makes that the cursor window.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from cachetools import LRUCache

Key = tuple[int, bytes]


def prefix_digest(tokens: np.ndarray, n: int) -> bytes:
    """A 128-bit digest of the first `n` tokens (int32)."""
    return hashlib.blake2b(tokens[:n].tobytes(), digest_size=16).digest()


@dataclass(frozen=True, slots=True)
class Checkpoint:
    n_tokens: int
    data: bytearray


class _IndexedLRU(LRUCache[Key, bytearray]):
    """An LRU by bytes that keeps a position index in step with evictions."""

    def __init__(self, maxsize: int) -> None:
        super().__init__(maxsize=maxsize, getsizeof=len)
        self.positions: dict[int, set[bytes]] = {}

    def __setitem__(self, key: Key, value: bytearray) -> None:  # type: ignore[override]
        super().__setitem__(key, value)
        self.positions.setdefault(key[0], set()).add(key[1])

    def __delitem__(self, key: Key) -> None:  # type: ignore[override]
        super().__delitem__(key)
        digests = self.positions.get(key[0])
        if digests is not None:
            digests.discard(key[1])
            if not digests:
                del self.positions[key[0]]


class CheckpointCache:
    """Checkpoints of one model's recurrent state: anchors and line checkpoints (see the
    module's docstring), each least recently used evicted first."""

    def __init__(self, max_bytes: int) -> None:
        self.max_bytes = max_bytes
        # Each bounded by the whole; `_evict` keeps their sum within it.
        self._anchors = _IndexedLRU(max(1, max_bytes))
        self._lines = _IndexedLRU(max(1, max_bytes))
        # Anchors with a deeper anchor of the same prefix: evicted before the others.
        self._covered: set[Key] = set()
        self.hits = 0
        self.misses = 0
        self.saved = 0

    @property
    def bytes_used(self) -> int:
        return int(self._anchors.currsize + self._lines.currsize)

    def __len__(self) -> int:
        return len(self._anchors) + len(self._lines)

    def has(self, tokens: np.ndarray, n: int) -> bool:
        key = (n, prefix_digest(tokens, n))
        return key in self._anchors or key in self._lines

    def put(
        self,
        tokens: np.ndarray,
        n: int,
        data: bytearray,
        *,
        anchor: bool = False,
        covers: bool = True,
    ) -> bool:
        """Keep the state after `tokens[:n]`; False when it is larger than the bound.
        An anchor that `covers` marks the shallower anchors of its prefix as covered (not
        the end of a whole prompt, whose window churns: it would cover the stable end)."""
        if len(data) > self.max_bytes:
            return False
        key = (n, prefix_digest(tokens, n))
        mine, other = (self._anchors, self._lines) if anchor else (self._lines, self._anchors)
        if key in other:
            del other[key]
            self._covered.discard(key)
        if anchor and covers:
            for m in [m for m in self._anchors.positions if m < n]:
                shallower = (m, prefix_digest(tokens, m))
                if shallower in self._anchors:
                    self._covered.add(shallower)
        mine[key] = data
        self._evict()
        self.saved += 1
        return True

    def _evict(self) -> None:
        while self.bytes_used > self.max_bytes:
            if self._lines and (self._anchors.currsize <= self.max_bytes // 2 or not self._anchors):
                self._lines.popitem()
            else:
                key = next((k for k in self._anchors if k in self._covered), None)
                if key is not None:  # covered: the oldest saved first
                    del self._anchors[key]
                else:
                    key, _ = self._anchors.popitem()
                self._covered.discard(key)

    def find(self, tokens: np.ndarray, limit: int) -> Checkpoint | None:
        """The checkpoint of `tokens` with the most positions, at most `limit`."""
        positions = set(self._anchors.positions) | set(self._lines.positions)
        for n in sorted((p for p in positions if p <= limit), reverse=True):
            key = (n, prefix_digest(tokens, n))
            for lru in (self._anchors, self._lines):
                data = lru.get(key)  # marks it recently used
                if data is not None:
                    self.hits += 1
                    return Checkpoint(n, data)
        self.misses += 1
        return None

    def positions(self) -> Sequence[int]:
        return sorted(set(self._anchors.positions) | set(self._lines.positions))

    def clear(self) -> None:
        self._anchors.clear()
        self._lines.clear()
        self._covered.clear()
