"""What the user recently looked at and changed, per file.

The server feeds this from `didOpen`/`didChange` and cursor positions; retrieval reads
the newest regions of *other* files (what the user just touched elsewhere is often what
the current edit is about). Everything is in memory, bounded, and thread-safe: edits
arrive on the event loop while retrieval runs in a worker thread.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal, NamedTuple

RegionKind = Literal["edit", "view"]


class Region(NamedTuple):
    """One recently edited or viewed range of a file (0-based lines, inclusive)."""

    path: str
    start_line: int
    end_line: int
    kind: RegionKind
    timestamp: float


@dataclass(slots=True)
class _Span:
    start: int
    end: int
    kind: RegionKind
    timestamp: float


class RecentActivity:
    """A bounded, thread-safe record of recently edited and viewed regions.

    Edits closer than `merge_gap` lines to an earlier edit of the same file extend it
    (typing a function line by line is one region, not fifty). A view is a window of
    `view_radius` lines around the cursor; a view near an earlier one moves it. Each
    file keeps at most `max_regions_per_file` regions and at most `max_files` files are
    kept, the least recently touched going first.
    """

    def __init__(
        self,
        *,
        merge_gap: int = 5,
        view_radius: int = 12,
        max_edit_span: int = 80,
        max_regions_per_file: int = 6,
        max_files: int = 32,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.merge_gap = merge_gap
        self.view_radius = view_radius
        self.max_edit_span = max_edit_span
        self.max_regions_per_file = max_regions_per_file
        self.max_files = max_files
        self._clock = clock
        self._lock = threading.Lock()
        # Insertion order of the dict = order of last activity (oldest first).
        self._files: dict[str, list[_Span]] = {}

    def note_view(self, path: str, line: int) -> None:
        """Record that the cursor is at `line` of `path` (open, click, scroll)."""
        line = max(0, line)
        now = self._clock()
        with self._lock:
            spans = self._touch(path)
            for span in spans:
                center = (span.start + span.end) // 2
                if span.kind == "view" and abs(center - line) <= self.view_radius:
                    span.start, span.end = max(0, line - self.view_radius), line + self.view_radius
                    span.timestamp = now
                    return
            spans.append(
                _Span(max(0, line - self.view_radius), line + self.view_radius, "view", now)
            )
            self._trim(spans)

    def note_edit(self, path: str, start_line: int, end_line: int, line_delta: int = 0) -> None:
        """Record an edit of lines `start_line..end_line` (inclusive, after the edit).

        `line_delta` is the number of lines the edit added (negative: removed); regions
        of the file below the edit move by it, so they keep pointing at the same code.
        """
        start_line = max(0, start_line)
        end_line = max(start_line, end_line)
        now = self._clock()
        with self._lock:
            spans = self._touch(path)
            if line_delta:
                for span in spans:
                    if span.start > end_line - line_delta:
                        span.start = max(0, span.start + line_delta)
                        span.end = max(span.start, span.end + line_delta)
            for span in spans:
                if span.kind != "edit":
                    continue
                near = (
                    start_line <= span.end + self.merge_gap
                    and end_line >= span.start - self.merge_gap
                )
                merged = (min(span.start, start_line), max(span.end, end_line))
                if near and merged[1] - merged[0] < self.max_edit_span:
                    span.start, span.end = merged
                    span.timestamp = now
                    return
            spans.append(_Span(start_line, end_line, "edit", now))
            self._trim(spans)

    def forget(self, path: str) -> None:
        """Drop everything recorded for `path` (the file was deleted)."""
        with self._lock:
            self._files.pop(path, None)

    def regions(
        self,
        exclude_path: str | None = None,
        limit: int = 12,
        kinds: tuple[RegionKind, ...] = ("edit", "view"),
    ) -> list[Region]:
        """The newest regions first, at most `limit`, none from `exclude_path`.

        Ties in time (a coarse clock) are broken by path and line so the answer is
        deterministic.
        """
        with self._lock:
            found = [
                Region(path, span.start, span.end, span.kind, span.timestamp)
                for path, spans in self._files.items()
                if path != exclude_path
                for span in spans
                if span.kind in kinds
            ]
        found.sort(key=lambda r: (-r.timestamp, r.path, r.start_line, r.kind))
        return found[: max(0, limit)]

    def edited_paths(self, exclude_path: str | None = None) -> set[str]:
        """Files with at least one recorded edit (their text may change again soon)."""
        with self._lock:
            return {
                path
                for path, spans in self._files.items()
                if path != exclude_path and any(span.kind == "edit" for span in spans)
            }

    def _touch(self, path: str) -> list[_Span]:
        spans = self._files.pop(path, None)
        if spans is None:
            spans = []
        self._files[path] = spans  # re-insert: now the most recent file
        while len(self._files) > self.max_files:
            del self._files[next(iter(self._files))]
        return spans

    def _trim(self, spans: list[_Span]) -> None:
        if len(spans) > self.max_regions_per_file:
            spans.sort(key=lambda s: s.timestamp)
            del spans[: len(spans) - self.max_regions_per_file]
