"""The workspace's context sources (index, recent activity, similar windows) behind one object,
and the provider that turns them into prompt blocks for the completer.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from context.index import WorkspaceIndex
from context.languages import language_of_document
from context.pack import FILE_SEP, pack
from context.recent import RecentActivity
from context.retrieve import gather_context
from context.similar import SimilarWindows
from context.types import PackedContext, Snippet
from lsp_server.completion.prompt import ContextBlock
from lsp_server.completion.service import ContextProvider, ContextQuery
from lsp_server.settings import Settings

log = logging.getLogger(__name__)

# Documents the index does not follow (untitled buffers, notebooks, files outside the
# workspace) kept parsed at once; the least recently completed is forgotten.
MAX_FOLLOWED = 8

Progress = Callable[[int, int, str], None]


class WorkspaceContext:
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
        self._sessions: dict[str, _Session] = {}  # per document: the context kept
        # Documents the index does not follow, given to it by `_follow_unindexed`.
        self._followed: OrderedDict[str, None] = OrderedDict()
        self._stopping = threading.Event()
        self.repacks = 0  # a kept context dropped (benchmarks read these)
        self.appends = 0  # blocks appended to a kept context

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
        self._sessions.pop(path, None)
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
        def provide(query: ContextQuery, count_tokens: Callable[[str], int]) -> list[ContextBlock]:
            settings = self.settings()
            c = settings.context
            prefix_lines = settings.completion.prefix_lines
            suffix_lines = settings.completion.suffix_lines
            if 0 <= query.window_start <= query.line < query.window_end:
                # What the prompt really shows (its windows move in steps and are cut on
                # long lines): what it leaves out can come as context.
                prefix_lines = query.line - query.window_start
                suffix_lines = query.window_end - 1 - query.line
            if not self.index.is_indexable(query.path):
                self._follow_unindexed(query)
            packed = gather_context(
                self.index,
                self.recent if c.recent else None,
                self.similar if c.similar else None,
                path=query.path,
                text=query.text,
                line=query.line,
                character=query.character,
                budget_tokens=query.budget_tokens,
                count_tokens=count_tokens,
                fmt=query.format,
                definitions=c.definitions,
                recent_edits=c.recent,
                similar_windows=c.similar,
                prefix_lines=prefix_lines,
                suffix_lines=suffix_lines,
            )
            return self._sticky(query, packed, count_tokens)

        return provide

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
            self._sessions.pop(oldest, None)

    def _sticky(
        self, query: ContextQuery, packed: PackedContext, count: Callable[[str], int]
    ) -> list[ContextBlock]:
        """Keep the context a document had while the cursor stays in the same definition.

        A fresh retrieval after each keystroke would reorder or swap snippets as names
        are typed, and each change re-evaluates everything after it in the prompt. So
        the blocks shown stay as long as every snippet in them still matches its file;
        what the fresh retrieval adds (a newly used definition, a region viewed in
        another file) is appended as one more block, within the budget. A move to
        another definition, or a shown snippet going stale, repacks from scratch.
        """
        region, span = self._region(query)
        # (The language too: a notebook's cells of several languages share its path.)
        key: tuple[object, ...] = (region, query.format, query.budget_tokens, query.language_id)
        session = self._sessions.get(query.path)
        if session is not None and session.key != key and session.key[1:] == key[1:]:
            # Half-typed code can hide the enclosing definition from the parser for a
            # keystroke or two: inside the span it had, it is still the same place.
            lost = region[0] == "lines" or session.span[0] <= span[0] <= session.span[1]
            if lost and session.span[0] <= query.line <= session.span[1] + REGION_SLACK:
                key = session.key
        if session is None or session.key != key or not self._still_valid(session, query):
            if session is not None:
                self.repacks += 1
                log.debug(
                    "context of %s repacked (%s)",
                    os.path.basename(query.path),
                    "moved to another definition" if session.key != key else "a snippet changed",
                )
            session = _Session(key, [], set(), 0, span)
            self._add(session, packed, query)
            self._sessions[query.path] = session
            return list(session.blocks)
        new = [s for s in packed.snippets if s.source in APPENDABLE and not session.covers(s)]
        remaining = query.budget_tokens - session.tokens
        if new and remaining > 0:
            roots = sorted({r for r in (self.index.root_of(s.path) for s in new) if r})
            added = pack(new, remaining, count, query.format, roots)
            if added.text:
                self._add(session, added, query)
                self.appends += 1
        if region == key[0]:
            session.span = span
        return list(session.blocks)

    def _add(self, session: _Session, packed: PackedContext, query: ContextQuery) -> None:
        specials = (FILE_SEP,) if query.format == "fim" else ()
        sources: dict[str, list[str]] = {}
        for snippet in packed.snippets:
            root = self.index.root_of(snippet.path)
            shown = os.path.relpath(snippet.path, root) if root else snippet.path
            sources.setdefault(snippet.source, []).append(
                f"{shown}:{snippet.start_line + 1}-{snippet.end_line + 1} ({snippet.reason})"
            )
            session.snippets.add(snippet)
        for tier, text in packed.segments:
            if text:
                session.blocks.append(ContextBlock(text, specials, tuple(sources.get(tier, ()))))
        session.tokens += packed.tokens

    def _region(self, query: ContextQuery) -> tuple[tuple[str, ...], tuple[int, int]]:
        """The definition the cursor is in, by name (stable when lines move above it),
        and its line span."""
        symbols = self.index.file(os.path.realpath(query.path))  # (as the index keys it)
        inner = None
        for d in symbols.definitions if symbols else ():
            if d.start_line <= query.line <= d.end_line and d.kind in REGION_KINDS:
                if inner is None or d.start_line >= inner.start_line:
                    inner = d
        if inner is not None:
            return (inner.kind, inner.parent, inner.name), (inner.start_line, inner.end_line)
        bucket = query.line // REGION_LINES
        return ("lines", str(bucket)), (bucket * REGION_LINES, (bucket + 1) * REGION_LINES - 1)

    def _still_valid(self, session: _Session, query: ContextQuery) -> bool:
        """Whether every snippet shown still reads the same in its file.

        Anywhere in the file: lines typed above a snippet move it without changing
        what the block shows (blocks carry no line numbers).
        """
        texts: dict[str, str | None] = {}
        for snippet in session.snippets:
            if snippet.path not in texts:
                text = query.text if snippet.path == query.path else self.index.text(snippet.path)
                texts[snippet.path] = text.replace("\r\n", "\n") if text is not None else None
            text = texts[snippet.path]
            if text is None or snippet.text not in text:
                return False
        return True


# Tiers whose new snippets are appended to a kept context; new similar windows are not
# (they change with every line typed and would re-evaluate the prompt's tail each time).
APPENDABLE = frozenset({"definition", "recent", "current"})
# Definitions that name the region the cursor is in (the innermost one holding it): the
# context packed for a region is kept while the cursor stays in it.
REGION_KINDS = frozenset({"function", "method", "class", "impl", "struct", "interface", "trait"})
REGION_LINES = 60
REGION_SLACK = 10  # lines past a definition's end still count as in it (code being typed)


@dataclass
class _Session:
    """The context kept for one document."""

    key: tuple[object, ...]
    blocks: list[ContextBlock]
    snippets: set[Snippet]
    tokens: int
    span: tuple[int, int]  # the lines of the region the context was packed for

    def covers(self, snippet: Snippet) -> bool:
        return any(
            s.path == snippet.path
            and s.start_line <= snippet.end_line
            and snippet.start_line <= s.end_line
            for s in self.snippets
        )


def _over(text: str, limit: int) -> bool:
    """Whether `text` takes more than `limit` bytes in UTF-8 (encoded only when unsure)."""
    if len(text) > limit:
        return True
    return len(text) * 4 > limit and len(text.encode("utf-8", "surrogatepass")) > limit
