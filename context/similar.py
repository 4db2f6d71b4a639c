"""Lexical similarity over the workspace: code that looks like the code at the cursor.

Two retrievers share one incremental inverted index of line windows:

- `SimilarWindows`: Copilot's neighbouring-tab ranking, Jaccard similarity between the
  set of identifiers of the lines before the cursor and that of each sliding window
  (default 40 lines every 20), over the whole workspace instead of open tabs only.
- `BM25Chunks`: BM25 over non-overlapping 10-line chunks, the retriever of the
  CrossCodeEval benchmark, kept as the baseline of bench/retrieval_bench.py.

Updating one file is cheap (the text is kept until a query could return that file,
then only that file's windows are replaced; old ones are tombstoned and compacted
away in bulk), so the server can call `update_file` on every change.
A query touches only the postings of its own identifiers and scores them with numpy,
a few milliseconds on a Django-sized workspace (≈24K windows).
"""

from __future__ import annotations

import logging
import math
import re
import threading
from array import array
from collections.abc import Callable, Iterable
from typing import NamedTuple

import numpy as np

log = logging.getLogger(__name__)

_WORD = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")

# Keywords and ubiquitous names of the indexed languages: they match nearly every
# window, so they only add noise to the score and time to the query.
STOPWORDS = frozenset(
    """
    and as assert async await break case catch class const continue def default del
    do elif else enum except export extends false final finally fn for from func
    function global go if impl import in interface is let local match mod module mut
    new nil none not null of or package pass private protected pub public raise return
    self static struct super switch then this throw true try type typeof use var void
    while with yield int str bool string the None True False end local nonlocal lambda
    """.split()
)


class Hit(NamedTuple):
    """A retrieved window: 0-based inclusive lines of `path`, and its score."""

    path: str
    start_line: int
    end_line: int
    score: float


def identifiers(text: str) -> list[str]:
    """The identifiers of `text` that count for similarity (keywords removed)."""
    return [w for w in _WORD.findall(text) if len(w) > 1 and w not in STOPWORDS]


class _WindowIndex:
    """An inverted index from identifiers to the line windows that contain them.

    Windows have ids that only grow; a removed file's windows are marked dead and the
    postings are compacted once the dead outnumber the living.
    """

    def __init__(self, window_lines: int, step: int, *, max_file_lines: int = 50_000) -> None:
        if window_lines < 1 or step < 1:
            raise ValueError("window_lines and step must be positive")
        self.window_lines = window_lines
        self.step = step
        self.max_file_lines = max_file_lines
        self._lock = threading.RLock()
        self._vocab: dict[str, int] = {}
        self._postings: list[array[int]] = []  # term id -> window ids (int32)
        self._tfs: list[array[int]] = []  # term id -> term count in that window (uint16)
        self._df: list[int] = []  # term id -> live windows containing it
        self._win_file = array("i")
        self._win_start = array("i")
        self._win_end = array("i")
        self._win_unique = array("i")  # distinct identifiers (Jaccard)
        self._win_len = array("i")  # all identifiers (BM25 length)
        self._alive = bytearray()
        self._file_ids: dict[str, int] = {}
        self._file_paths: list[str] = []
        self._file_windows: dict[int, tuple[int, int]] = {}  # file id -> (first wid, count)
        self._dead = 0
        self._live_len_total = 0
        self._pending: dict[str, str] = {}  # path -> text not yet windowed

    # -- updates ---------------------------------------------------------------

    def update_file(self, path: str, text: str) -> None:
        """Note the current `text` of `path`; cheap enough for every keystroke.

        The windows are computed at the next query that may return this file (one that
        does not exclude it), or at `flush()`: while the user types in a file, queries
        exclude that file, so it is re-windowed once when they move elsewhere.
        """
        with self._lock:
            self._pending[path] = text

    def flush(self, except_path: str | None = None) -> None:
        """Index every pending update now (but that of `except_path`)."""
        with self._lock:
            for path in [p for p in self._pending if p != except_path]:
                self._index_now(path, self._pending.pop(path))

    def _index_now(self, path: str, text: str) -> None:
        # Lines as LSP and tree-sitter count them: only "\n" ends a line.
        lines = [line.rstrip("\r") for line in text.split("\n")[: self.max_file_lines]]
        if lines and lines[-1] == "":
            lines.pop()
        line_words = [identifiers(line) if line.strip() else [] for line in lines]
        windows = list(self._windows_of(len(lines)))
        counted = []
        for start, end in windows:
            bag: dict[str, int] = {}
            for words in line_words[start : end + 1]:
                for word in words:
                    bag[word] = bag.get(word, 0) + 1
            counted.append((start, end, bag))
        with self._lock:
            self._remove_locked(path)
            fid = self._file_ids.get(path)
            if fid is None:
                fid = len(self._file_paths)
                self._file_ids[path] = fid
                self._file_paths.append(path)
            first = len(self._alive)
            for start, end, bag in counted:
                wid = len(self._alive)
                for word, count in bag.items():
                    tid = self._vocab.get(word)
                    if tid is None:
                        tid = len(self._postings)
                        self._vocab[word] = tid
                        self._postings.append(array("i"))
                        self._tfs.append(array("H"))
                        self._df.append(0)
                    self._postings[tid].append(wid)
                    self._tfs[tid].append(min(count, 65535))
                    self._df[tid] += 1
                length = sum(bag.values())
                self._win_file.append(fid)
                self._win_start.append(start)
                self._win_end.append(end)
                self._win_unique.append(len(bag))
                self._win_len.append(length)
                self._alive.append(1)
                self._live_len_total += length
            self._file_windows[fid] = (first, len(counted))
            if self._dead > 4096 and self._dead > len(self._alive) - self._dead:
                self._compact_locked()

    def remove_file(self, path: str) -> None:
        """Forget `path` (deleted, or no longer part of the workspace)."""
        with self._lock:
            self._pending.pop(path, None)
            self._remove_locked(path)

    def update_many(
        self,
        paths: Iterable[str],
        read: Callable[[str], str | None],
        cancel: Callable[[], bool] | None = None,
    ) -> int:
        """Index every path whose text `read` returns; returns how many were indexed."""
        done = 0
        for path in paths:
            if cancel is not None and cancel():
                break
            with self._lock:
                if path in self._pending:  # the editor's text is newer than the disk's
                    continue
            text = read(path)
            if text is not None:
                self._index_now(path, text)
                done += 1
        return done

    def files(self) -> list[str]:
        """Paths currently indexed."""
        self.flush()
        with self._lock:
            return [self._file_paths[fid] for fid in self._file_windows]

    def __len__(self) -> int:
        """Number of live windows."""
        self.flush()
        with self._lock:
            return len(self._alive) - self._dead

    def _windows_of(self, n_lines: int) -> Iterable[tuple[int, int]]:
        if n_lines == 0:
            return
        start = 0
        while True:
            end = min(start + self.window_lines, n_lines) - 1
            yield start, end
            if end >= n_lines - 1:
                return
            start += self.step

    def _remove_locked(self, path: str) -> None:
        fid = self._file_ids.get(path)
        if fid is None or fid not in self._file_windows:
            return
        first, count = self._file_windows.pop(fid)
        for wid in range(first, first + count):
            if self._alive[wid]:
                self._alive[wid] = 0
                self._dead += 1
                self._live_len_total -= self._win_len[wid]
        # Document frequencies still count the dead windows until the next compaction
        # (finding their terms would need per-window term lists); BM25's idf barely
        # moves for that.

    def _compact_locked(self) -> None:
        alive = np.frombuffer(bytes(self._alive), dtype=np.uint8).astype(bool)
        new_id = np.cumsum(alive, dtype=np.int64) - 1
        for tid in range(len(self._postings)):
            ids = np.frombuffer(self._postings[tid], dtype=np.int32).copy()
            tfs = np.frombuffer(self._tfs[tid], dtype=np.uint16).copy()
            keep = alive[ids] if len(ids) else np.zeros(0, dtype=bool)
            self._postings[tid] = array("i", new_id[ids[keep]].astype(np.int32).tobytes())
            self._tfs[tid] = array("H", tfs[keep].tobytes())
            self._df[tid] = int(keep.sum())
        mask = alive
        for name in ("_win_file", "_win_start", "_win_end", "_win_unique", "_win_len"):
            values = np.frombuffer(getattr(self, name), dtype=np.int32).copy()
            setattr(self, name, array("i", values[mask].tobytes()))
        remap: dict[int, tuple[int, int]] = {}
        for fid, (first, count) in self._file_windows.items():
            remap[fid] = (int(new_id[first]), count)
        self._file_windows = remap
        self._alive = bytearray(b"\x01" * int(mask.sum()))
        self._dead = 0
        log.debug("compacted the window index to %d windows", len(self._alive))

    # -- queries ---------------------------------------------------------------

    def _snapshot(self, words: Iterable[str]) -> tuple[list[int], np.ndarray, np.ndarray]:
        """Term ids of `words` known to the index, their window ids and counts."""
        tids = sorted({self._vocab[w] for w in words if w in self._vocab})
        if not tids:
            return tids, np.zeros(0, np.int32), np.zeros(0, np.uint16)
        ids = np.concatenate([np.frombuffer(self._postings[t], dtype=np.int32) for t in tids])
        tfs = np.concatenate([np.frombuffer(self._tfs[t], dtype=np.uint16) for t in tids])
        return tids, ids, tfs

    def _column(self, name: str) -> np.ndarray:
        # A copy: a live view would forbid appending to the array while it exists.
        column: np.ndarray = np.frombuffer(getattr(self, name), dtype=np.int32).copy()
        return column

    def _select(
        self, scores: np.ndarray, k: int, exclude_path: str | None, min_score: float
    ) -> list[Hit]:
        """The best `k` windows, at most one of any overlapping pair, best first."""
        alive = np.frombuffer(bytes(self._alive), dtype=np.uint8).astype(bool)
        scores = np.where(alive, scores, 0.0)
        if exclude_path is not None and exclude_path in self._file_ids:
            fid = self._file_ids[exclude_path]
            span = self._file_windows.get(fid)
            if span is not None:
                scores[span[0] : span[0] + span[1]] = 0.0
        candidates = np.nonzero(scores > min_score)[0]
        if len(candidates) == 0:
            return []
        # Stable order: score, then window id (so equal scores never flip).
        order = candidates[np.lexsort((candidates, -scores[candidates]))]
        hits: list[Hit] = []
        taken: dict[int, list[tuple[int, int]]] = {}
        for wid in order[: max(64, k * 8)].tolist():
            fid = self._win_file[wid]
            start, end = self._win_start[wid], self._win_end[wid]
            spans = taken.setdefault(fid, [])
            if any(start <= e and end >= s for s, e in spans):
                continue
            spans.append((start, end))
            hits.append(Hit(self._file_paths[fid], start, end, float(scores[wid])))
            if len(hits) >= k:
                break
        return hits


class SimilarWindows(_WindowIndex):
    """Jaccard similarity over sliding windows (Copilot's neighbouring-tab ranking)."""

    def __init__(self, window_lines: int = 40, step: int = 20, **kwargs: int) -> None:
        super().__init__(window_lines, step, **kwargs)

    def query(
        self, text: str, k: int = 8, exclude_path: str | None = None, min_score: float = 0.05
    ) -> list[Hit]:
        """Windows whose identifier set is most like that of `text`, best first.

        Overlapping windows of one file are never both returned. Scores are Jaccard
        indices in [0, 1].
        """
        words = set(identifiers(text))
        if not words or k <= 0:
            return []
        with self._lock:
            self.flush(except_path=exclude_path)
            _, ids, _ = self._snapshot(words)
            if len(ids) == 0:
                return []
            n = len(self._alive)
            inter = np.bincount(ids, minlength=n).astype(np.float64)
            union = len(words) + self._column("_win_unique") - inter
            scores = np.divide(inter, union, out=np.zeros(n), where=union > 0)
            return self._select(scores, k, exclude_path, min_score)


class BM25Chunks(_WindowIndex):
    """BM25 over non-overlapping chunks of 10 lines (CrossCodeEval's retriever)."""

    def __init__(
        self, chunk_lines: int = 10, *, k1: float = 1.2, b: float = 0.75, **kwargs: int
    ) -> None:
        super().__init__(chunk_lines, chunk_lines, **kwargs)
        self.k1 = k1
        self.b = b

    def query(
        self, text: str, k: int = 8, exclude_path: str | None = None, min_score: float = 0.0
    ) -> list[Hit]:
        """Chunks ranked by Okapi BM25 against the identifiers of `text`, best first."""
        words = identifiers(text)
        if not words or k <= 0:
            return []
        with self._lock:
            self.flush(except_path=exclude_path)
            n_live = len(self._alive) - self._dead
            if n_live <= 0:
                return []
            avgdl = max(1.0, self._live_len_total / n_live)
            lengths = self._column("_win_len").astype(np.float64)
            n = len(self._alive)
            scores = np.zeros(n)
            for tid in sorted({self._vocab[w] for w in words if w in self._vocab}):
                ids = np.frombuffer(self._postings[tid], dtype=np.int32).copy()
                tf = np.frombuffer(self._tfs[tid], dtype=np.uint16).astype(np.float64)
                df = min(self._df[tid], n_live)
                idf = math.log(1.0 + (n_live - df + 0.5) / (df + 0.5))
                norm = self.k1 * (1.0 - self.b + self.b * lengths[ids] / avgdl)
                scores += np.bincount(
                    ids, weights=idf * tf * (self.k1 + 1.0) / (tf + norm), minlength=n
                )
            return self._select(scores, k, exclude_path, min_score)
