"""The workspace's context sources (index, recent activity, similar windows) behind one object,
and the provider that turns them into prompt blocks for the completer.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Sequence

from context.index import WorkspaceIndex
from context.pack import FILE_SEP
from context.recent import RecentActivity
from context.retrieve import gather_context
from context.similar import SimilarWindows
from lsp_server.completion.prompt import ContextBlock
from lsp_server.completion.service import ContextProvider, ContextQuery
from lsp_server.settings import Settings

log = logging.getLogger(__name__)

Progress = Callable[[int, int, str], None]


class WorkspaceContext:
    """Owns the index of the workspace roots and what the server learns from the editor."""

    def __init__(self, roots: Sequence[str], settings: Callable[[], Settings], cache_dir: str | None = None) -> None:
        s = settings().context
        self.settings = settings
        self.index = WorkspaceIndex(
            list(roots), cache_dir=cache_dir, max_file_size=s.max_file_size, exclude=tuple(s.exclude)
        )
        self.recent = RecentActivity()
        self.similar = SimilarWindows()
        self._built = threading.Event()

    def build(self, progress: Progress | None = None, cancel: threading.Event | None = None) -> str:
        """Index every file (reusing the persisted index), then the similarity windows."""
        stats = self.index.build(progress, cancel)
        start = time.perf_counter()
        if self.settings().context.similar:
            self.similar.update_many(
                self.index.files(), self.index.text, cancel=(cancel.is_set if cancel else None)
            )
        self._built.set()
        summary = (
            f"{stats.files} files, {stats.definitions} definitions "
            f"({stats.parsed} parsed, {stats.reused} reused) in {stats.seconds + time.perf_counter() - start:.1f} s"
        )
        log.info("workspace indexed: %s", summary)
        return summary

    # ---- editor events -----------------------------------------------------------------

    def update_document(self, path: str, text: str) -> None:
        if not self.index.is_indexable(path):
            return
        self.index.update_document(path, text)
        if self.settings().context.similar:
            self.similar.update_file(path, text)

    def close_document(self, path: str) -> None:
        self.index.close_document(path)

    def note_view(self, path: str, line: int) -> None:
        self.recent.note_view(path, line)

    def note_edit(self, path: str, start_line: int, end_line: int) -> None:
        self.recent.note_edit(path, start_line, end_line)

    def files_changed(self, changes: Sequence[tuple[str, bool]]) -> None:
        for path, deleted in changes:
            if deleted:
                self.index.remove_file(path)
                self.similar.remove_file(path)
                continue
            if self.index.update_file(path) is not None and self.settings().context.similar:
                text = self.index.text(path)
                if text is not None:
                    self.similar.update_file(path, text)

    def close(self) -> None:
        self.index.close()

    # ---- the provider ---------------------------------------------------------------------

    def provider(self) -> ContextProvider:
        def provide(query: ContextQuery, count_tokens: Callable[[str], int]) -> list[ContextBlock]:
            settings = self.settings()
            c = settings.context
            packed = gather_context(
                self.index, self.recent if c.recent else None, self.similar if c.similar else None,
                path=query.path, text=query.text, line=query.line, character=query.character,
                budget_tokens=query.budget_tokens, count_tokens=count_tokens, fmt=query.format,
                definitions=c.definitions, recent_edits=c.recent, similar_windows=c.similar,
                prefix_lines=settings.completion.prefix_lines,
                suffix_lines=settings.completion.suffix_lines,
            )
            specials = (FILE_SEP,) if query.format == "fim" else ()
            return [ContextBlock(text, specials) for _tier, text in packed.segments if text]

        return provide
