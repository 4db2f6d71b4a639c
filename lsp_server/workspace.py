"""The workspace as the server knows it: the index of its roots, the recent activity and the
similar windows (all from `context/`), fed by the editor's events, and the context provider
that turns them into the completer's prompt blocks. Which blocks stay in a document's
prompt from one request to the next is `context/sticky.py`'s rule.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Iterable, Sequence

from context.index import WorkspaceIndex
from context.languages import language_of_document
from context.pack import FILE_SEP, pack
from context.recent import RecentActivity
from context.retrieve import gather_context
from context.secrets import redact
from context.similar import SimilarWindows
from context.sticky import Kept, StickyContext, headroom
from context.types import PackedContext, Snippet
from lsp_server.completion.prompt import ContextBlock
from lsp_server.completion.service import ContextProvider, ContextQuery
from lsp_server.settings import Settings

log = logging.getLogger(__name__)

# Documents the index does not follow (untitled buffers, notebooks, files outside the
# workspace) kept parsed at once; the least recently completed is forgotten.
MAX_FOLLOWED = 8

Progress = Callable[[int, int, str], None]


class Workspace:
    """Owns the index of the workspace roots and what the server learns from the editor."""

    def __init__(
        self, roots: Sequence[str], settings: Callable[[], Settings], cache_dir: str | None = None
    ) -> None:
        s = settings().context
        self.settings = settings
        self.index = WorkspaceIndex(
            list(roots),
            cache_dir=cache_dir,
            max_file_size=s.max_file_size,
            exclude=tuple(s.exclude),
        )
        self.recent = RecentActivity()
        self.similar = SimilarWindows()
        self.sticky = StickyContext()  # per document: the context its prompt keeps
        # Documents the index does not follow, given to it by `_follow_unindexed`.
        self._followed: OrderedDict[str, None] = OrderedDict()
        self._stopping = threading.Event()

    def build(self, progress: Progress | None = None, cancel: threading.Event | None = None) -> str:
        """Index every file (reusing the persisted index), then the similarity windows."""
        stats = self.index.build(progress, cancel)
        start = time.perf_counter()
        self.index.prepare_lookups()  # (not left to the first completion)
        if self.settings().context.similar:
            self.similar.update_many(
                self.index.files(), self.index.text, cancel=(cancel.is_set if cancel else None)
            )
        summary = (
            f"{stats.files} files, {stats.definitions} definitions "
            f"({stats.parsed} parsed, {stats.read_as_text} read as text, {stats.reused} reused) "
            f"in {stats.seconds + time.perf_counter() - start:.1f} s"
        )
        log.info("workspace indexed: %s", summary)
        return summary

    # ---- editor events -----------------------------------------------------------------

    def update_document(self, path: str, text: str) -> None:
        if not self.index.is_indexable(path):
            return
        if _over(text, self.settings().context.max_file_size):
            # The size limit holds for unsaved text too (a 20 MB buffer took 1.2 GB and
            # 6 s per completion): the index keeps the disk version, if any.
            self.index.close_document(path)
            on_disk = self.index.text(path)
            if on_disk is None:
                self.similar.remove_file(path)
            elif self.settings().context.similar:
                self.similar.update_file(path, on_disk)
            return
        self.index.update_document(path, text)
        if self.settings().context.similar:
            self.similar.update_file(path, text)

    def close_document(self, path: str) -> None:
        self.index.close_document(path)
        self.sticky.forget(path)
        self._followed.pop(path, None)

    # Recent activity is noted only in files the index accepts (inside a root, not
    # ignored or excluded, a supported language, not over the size limit): the model's
    # context comes from nowhere else. A gitignored settings file holding keys, a file
    # outside the workspace or a log opened in the editor never enters a prompt.

    def note_view(self, path: str, line: int) -> None:
        if self.index.is_indexable(path):
            self.recent.note_view(path, line)

    def note_edit(self, path: str, start_line: int, end_line: int, line_delta: int = 0) -> None:
        """An edit of lines start..end; `line_delta` lines were added (or removed if < 0)."""
        if self.index.is_indexable(path):
            self.recent.note_edit(path, start_line, end_line, line_delta)

    def files_changed(self, changes: Sequence[tuple[str, bool]]) -> None:
        for path, deleted in changes:
            if self._stopping.is_set():
                return  # shutting down: a checkout of 20,000 files must not delay the exit
            if deleted:
                self.index.remove_file(path)
                self.similar.remove_file(path)
                continue
            if self.index.update_file(path) is not None and self.settings().context.similar:
                text = self.index.text(path)
                if text is not None:
                    self.similar.update_file(path, text)

    def stop(self) -> None:
        """Make a batch of file changes under way stop at its next file (before `close`)."""
        self._stopping.set()

    def close(self) -> None:
        self._stopping.set()
        self.index.close()

    # ---- the provider ---------------------------------------------------------------------

    def provider(self) -> ContextProvider:
        return _Provider(self)

    def provide(
        self, query: ContextQuery, count_tokens: Callable[[str], int]
    ) -> list[ContextBlock]:
        """The context blocks of `query`'s prompt: kept, appended to, or packed afresh by
        the rule of `context.sticky` (a refresh's blocks are pending until `commit`)."""
        settings = self.settings()
        c = settings.context
        prefix_lines = settings.completion.prefix_lines
        suffix_lines = settings.completion.suffix_lines
        if 0 <= query.window_start <= query.line < query.window_end:
            # What the prompt really shows (its windows move in steps and are cut on
            # long lines; the file's snapshot): what it leaves out can come as context.
            prefix_lines = query.line - query.window_start
            suffix_lines = query.window_end - 1 - query.line
        if not self.index.is_indexable(query.path):
            self._follow_unindexed(query)
        budget = query.budget_tokens - (headroom(query.budget_tokens) if query.refresh else 0)
        packed = gather_context(
            self.index,
            self.recent if c.recent else None,
            self.similar if c.similar else None,
            path=query.path,
            text=query.text,
            line=query.line,
            character=query.character,
            budget_tokens=budget,
            count_tokens=count_tokens,
            fmt=query.format,
            definitions=c.definitions,
            recent_edits=c.recent,
            similar_windows=c.similar,
            prefix_lines=prefix_lines,
            suffix_lines=suffix_lines,
        )
        # (The language too: a notebook's cells of several languages share its path.)
        key = (query.format, query.language_id)
        if query.refresh:
            kept = self.sticky.get(query.path)
            stale = kept is not None and not self._still_valid(kept.snippets, query)
            return self._blocks(self.sticky.refresh(query.path, key, packed, stale=stale), query)

        def pack_more(snippets: list[Snippet], room: int) -> PackedContext:
            roots = sorted({r for r in (self.index.root_of(s.path) for s in snippets) if r})
            return pack(snippets, room, count_tokens, query.format, roots)

        kept = self.sticky.request(query.path, key, packed, query.budget_tokens, pack_more)
        return self._blocks(kept, query)

    def commit(self, path: str) -> None:
        """The refreshed context of `path` was evaluated: requests use it from now on."""
        self.sticky.commit(path)

    @property
    def repacks(self) -> int:
        return self.sticky.repacks

    @property
    def appends(self) -> int:
        return self.sticky.appends

    def _follow_unindexed(self, query: ContextQuery) -> None:
        """Give the index the text of a document it does not follow (an untitled buffer,
        a notebook's cells joined, a file outside the workspace or ignored), as the prompt
        shows it: its imports then bring their definitions from the workspace, and its
        own definitions far from the cursor can come as context. Only its symbols are
        kept, until it is closed; it never enters the name map or recent activity."""
        language = language_of_document(query.path, query.language_id)
        if language is None or _over(query.text, self.settings().context.max_file_size):
            # (Nor the text of another language's cells, or of what it was before.)
            self.index.close_document(query.path)
            return
        self.index.update_document(query.path, query.text, language)
        # A few at most: a job queued before its document closed would open it again,
        # for good (the least recent one is forgotten).
        followed = self._followed
        followed[query.path] = None
        followed.move_to_end(query.path)
        while len(followed) > MAX_FOLLOWED:
            oldest, _ = followed.popitem(last=False)
            self.index.close_document(oldest)
            self.sticky.forget(oldest)

    def _blocks(self, kept: Kept, query: ContextQuery) -> list[ContextBlock]:
        specials = (FILE_SEP,) if query.format == "fim" else ()
        patterns = self.settings().context.redact_patterns
        blocks: list[ContextBlock] = []
        first_appended = len(kept.parts) - kept.appended
        for index, packed in enumerate(kept.parts):
            sources: dict[str, list[str]] = {}
            for snippet in packed.snippets:
                root = self.index.root_of(snippet.path)
                shown = os.path.relpath(snippet.path, root) if root else snippet.path
                sources.setdefault(snippet.source, []).append(
                    f"{shown}:{snippet.start_line + 1}-{snippet.end_line + 1} ({snippet.reason})"
                )
            for tier, text in packed.segments:
                if text:
                    blocks.append(
                        ContextBlock(
                            redact(text, patterns),  # other files' secrets stay there
                            specials,
                            tuple(sources.get(tier, ())),
                            appended=index >= first_appended,
                        )
                    )
        return blocks

    def _still_valid(self, snippets: Iterable[Snippet], query: ContextQuery) -> bool:
        """Whether every snippet shown still reads the same in its file.

        Anywhere in the file: lines typed above a snippet move it without changing
        what the block shows (blocks carry no line numbers).
        """
        texts: dict[str, str | None] = {}
        for snippet in snippets:
            if snippet.path not in texts:
                text = query.text if snippet.path == query.path else self.index.text(snippet.path)
                texts[snippet.path] = text.replace("\r\n", "\n") if text is not None else None
            text = texts[snippet.path]
            if text is None or snippet.text not in text:
                return False
        return True


class _Provider:
    """The completer's context provider: a callable, and `commit` for refreshes."""

    def __init__(self, workspace: Workspace) -> None:
        self._workspace = workspace

    def __call__(
        self, query: ContextQuery, count_tokens: Callable[[str], int]
    ) -> list[ContextBlock]:
        return self._workspace.provide(query, count_tokens)

    def commit(self, path: str) -> None:
        self._workspace.commit(path)


def _over(text: str, limit: int) -> bool:
    """Whether `text` takes more than `limit` bytes in UTF-8 (encoded only when unsure)."""
    if len(text) > limit:
        return True
    return len(text) * 4 > limit and len(text.encode("utf-8", "surrogatepass")) > limit
