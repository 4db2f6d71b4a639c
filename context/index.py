"""The workspace index: every source file's symbols, kept fresh and persisted.

``WorkspaceIndex.build`` walks the roots (``context.walk``), reuses persisted entries
whose size and mtime (or, failing that, content hash) are unchanged, parses the rest
(``context.symbols``; in worker processes when there are many, to use every core:
``context.parse_pool``) and saves the changes as they arrive, a transaction per few
hundred files and root (``context.persist``; an interrupted build keeps what it saved).
Open documents are re-parsed incrementally from their unsaved text
(``update_document``, ``context.open_documents``) and shadow the disk version until
closed. Imports resolve through ``context.imports``, for which the index is the view of
the workspace.

Memory: per file the index keeps its stat, hash, language and definition names
(``context.file_table``); the symbols themselves stay in SQLite (or, without
persistence, as marshalled bytes) and are decoded on demand into small LRU caches
(``context.symbol_reader``). A
file's referenced identifiers are found when its ``FileSymbols`` is built (from the
file), not at indexing time: they cost a tenth of the indexing and few files are ever
read whole. That keeps a warm start to reading one narrow table, and the resident size
proportional to the number of files.

Thread safety: one lock guards the tables and is only held for dictionary work;
parsing, reading files and decoding happen outside it. ``build`` runs in a worker
thread while the server thread calls ``update_document`` and the lookups.
"""

from __future__ import annotations

import contextlib
import gc
import logging
import os
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field

from context import symbols as sym
from context.file_table import SKIPPED, Entry, FileTable
from context.imports import ExportSummary, ImportResolver
from context.languages import (
    PROJECT_FILES,
    has_grammar,
    language_for_path,
)
from context.open_documents import parse_document
from context.parse_pool import ParsePool, ParseResult, index_file
from context.persist import Changes, Persistence
from context.store import StoredFile, storable
from context.symbol_reader import SymbolReader
from context.types import Definition, FileSymbols, Import
from context.walk import (
    DEFAULT_MAX_FILE_SIZE,
    IgnoreRules,
    WalkEntry,
    is_inside,
    walk,
)

log = logging.getLogger(__name__)


@dataclass
class IndexStats:
    """What a build found and did."""

    files: int
    definitions: int
    languages: dict[str, int]
    parsed: int  # read and parsed with a grammar
    reused: int
    seconds: float
    removed: int = 0
    skipped: int = 0  # binary or oversize files met by the walk
    cancelled: bool = False
    read_as_text: int = 0  # read for a language without a grammar (no parse)


@contextlib.contextmanager
def _collector_paused() -> Iterator[None]:
    """Pause the cycle collector while the persisted index loads and the walk lists the
    files (bounded work, not the parse): tens of thousands of small objects, none in a
    cycle, would trigger full collections that walk everything the process holds (up to
    half of a warm restart's time, at random)."""
    was = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was:
            gc.enable()


@dataclass
class _BuildState:
    walked: dict[str, WalkEntry] = field(default_factory=dict)
    project_files: list[str] = field(default_factory=list)


class WorkspaceIndex:
    """Symbols of every source file under some workspace roots. See the module docstring."""

    def __init__(
        self,
        roots: Sequence[str],
        *,
        cache_dir: str | None = None,
        max_file_size: int = DEFAULT_MAX_FILE_SIZE,
        exclude: Sequence[str] = (),
        workers: int | None = None,
    ) -> None:
        """``cache_dir``: None = the user cache dir, "" = keep nothing on disk.
        ``workers``: parsing processes (default: one per CPU core, at most 8)."""
        self.roots = list(dict.fromkeys(os.path.realpath(r) for r in roots))
        # Longest first, so a nested root owns its files.
        self._roots_by_depth = sorted(self.roots, key=len, reverse=True)
        self.max_file_size = max_file_size
        self.exclude = tuple(exclude)
        self.workers = workers if workers is not None else min(os.cpu_count() or 1, 8)
        if cache_dir is None:
            import platformdirs

            cache_dir = os.path.join(platformdirs.user_cache_dir("qwen-lsp"), "index")
        self.cache_dir = cache_dir
        self._rules = {root: IgnoreRules(root, self.exclude) for root in self.roots}
        self._persistence = Persistence(cache_dir)
        self._loaded: set[str] = set()
        self._lock = threading.RLock()
        self._build_lock = threading.Lock()
        self._doc_lock = threading.Lock()
        self._files = FileTable(self.root_of)  # (guarded by `_lock`)
        self._reader = SymbolReader(self._files, self._lock, self._persistence, max_file_size)
        self._project_files: set[str] = set()
        self._resolver = ImportResolver(self)
        self._closed = False

    # --- building -------------------------------------------------------------------

    def build(
        self,
        progress: Callable[[int, int, str], None] | None = None,
        cancel: threading.Event | None = None,
    ) -> IndexStats:
        """Bring the index up to date with the disk and persist it. Thread-safe; one
        build runs at a time. ``progress(done, total, path)``; ``cancel`` stops early
        (what was parsed so far is kept and saved)."""
        with self._build_lock:
            return self._build(progress, cancel)

    def _build(
        self,
        progress: Callable[[int, int, str], None] | None,
        cancel: threading.Event | None,
    ) -> IndexStats:
        started = time.perf_counter()
        with _collector_paused():
            for root in self.roots:
                self._load(root)
            state = _BuildState()
            # Parsing starts while the walk goes on, and results are merged as they come:
            # the walk and the merge then overlap with the workers' parsing.
            changes = Changes()
            pool = ParsePool(
                lambda results: self._merge(results, changes),
                lambda: self._save(changes),
                workers=self.workers,
                max_file_size=self.max_file_size,
                progress=progress,
                cancel=cancel,
            )
            for root in self.roots:
                nested = [r for r in self.roots if r != root and is_inside(r, root)]
                for entry in walk(
                    root,
                    rules=self._rules[root],
                    max_file_size=self.max_file_size,
                    skip_roots=nested,
                    project_files=state.project_files,
                    cancelled=cancel,
                ):
                    state.walked[entry.path] = entry
                    e = self._files.entries.get(entry.path)
                    if e is not None and e.size == entry.size and e.mtime_ns == entry.mtime_ns:
                        pool.reuse(entry.path, skipped=e.language == SKIPPED)
                    else:
                        pool.add(
                            (entry.path, entry.language, e.hash if e is not None else None),
                            entry.size,
                        )
        pool.finish()
        self.workers = pool.workers  # (1 when no worker could start)
        cancelled = bool(cancel is not None and cancel.is_set())
        with self._lock:
            removed = [] if cancelled else [p for p in self._files.entries if p not in state.walked]
            for path in removed:
                e = self._files.entries.get(path)
                if e is not None:
                    self._files.drop(path)
                    changes.of(e.root).deletes.append(path)
            project_changed = set(state.project_files) != self._project_files
            if not cancelled:
                self._project_files = set(state.project_files)
        self._persist(changes)
        if removed or changes.parsed or changes.read_as_text or changes.skipped or project_changed:
            self._resolver.reset(project_files_changed=project_changed)
            with self._lock:
                self._files.forward = None
        stats = self.stats()
        stats.parsed = changes.parsed
        stats.read_as_text = changes.read_as_text
        stats.reused = pool.reused + changes.same
        stats.removed = len(removed)
        stats.skipped = changes.skipped + pool.still_skipped
        stats.cancelled = cancelled
        stats.seconds = time.perf_counter() - started
        log.info(
            "indexed %d files (%d parsed, %d read as text, %d reused, %d removed) in %.2fs",
            stats.files,
            stats.parsed,
            stats.read_as_text,
            stats.reused,
            stats.removed,
            stats.seconds,
        )
        return stats

    def _load(self, root: str) -> None:
        """Load the persisted entries of a root (once), without their symbols."""
        if root in self._loaded:
            return
        self._loaded.add(root)
        store = self._persistence.store(root)
        if store is None:
            return
        with self._lock:
            for row in store.load():
                if self.root_of(row.path) != root or row.path in self._files.entries:
                    continue
                entry = Entry(
                    row.size,
                    row.mtime_ns,
                    row.hash,
                    row.language,
                    row.names,
                    row.definitions,
                    None,
                    root,
                )
                self._files.add(row.path, entry)

    def _apply(self, results: list[ParseResult]) -> Changes:
        """Merge results into memory and persist them at once (update_file)."""
        changes = Changes()
        self._merge(results, changes)
        self._persist(changes)
        return changes

    def _merge(self, results: list[ParseResult], changes: Changes) -> None:
        """Merge worker results into the in-memory maps, noting what to persist."""
        with self._lock:
            for r in results:
                root = self.root_of(r.path) or ""
                if r.status == "missing":
                    if r.path in self._files.entries:
                        self._files.drop(r.path)
                        changes.of(root).deletes.append(r.path)
                    continue
                if r.status == "same":
                    changes.same += 1
                    e = self._files.entries.get(r.path)
                    if e is not None:
                        e.size, e.mtime_ns = r.size, r.mtime_ns
                        changes.of(root).touches.append(
                            StoredFile(
                                r.path,
                                r.size,
                                r.mtime_ns,
                                e.hash,
                                e.language,
                                e.names,
                                e.definitions,
                            )
                        )
                    continue
                if r.status == "skipped":
                    changes.skipped += 1
                    entry = Entry(
                        r.size, r.mtime_ns, b"", SKIPPED, (), 0, sym.encode(sym.EMPTY), root
                    )
                else:
                    if has_grammar(r.language):
                        changes.parsed += 1
                    else:
                        changes.read_as_text += 1
                    entry = Entry(
                        r.size, r.mtime_ns, r.hash, r.language, r.names, r.definitions, r.blob, root
                    )
                self._files.replace(r.path, entry)
                changes.of(root).upserts.append(
                    (
                        StoredFile(
                            r.path,
                            entry.size,
                            entry.mtime_ns,
                            entry.hash,
                            entry.language,
                            entry.names,
                            entry.definitions,
                        ),
                        entry.blob,
                    )
                )

    def _save(self, changes: Changes) -> None:
        """Persist what a build merged so far and start a new batch of rows (the counts
        go on)."""
        self._persist(changes)
        changes.clear_rows()

    def _persist(self, changes: Changes) -> None:
        """Write the changes of each root in one transaction."""
        saved = self._persistence.write(changes)
        if saved:
            with self._lock:  # saved: the symbols can be read back from the store
                for row in saved:
                    e = self._files.entries.get(row.path)
                    if e is not None and e.hash == row.hash and storable(row.path):
                        e.blob = None

    # --- open documents -------------------------------------------------------------

    def update_document(
        self, path: str, text: str, language: str | None = None
    ) -> FileSymbols | None:
        """Re-index an open document from its unsaved text, incrementally.

        The previous tree of the document is edited (common prefix and suffix of the old
        and new bytes) and re-parsed, so a keystroke costs a fraction of a full parse.
        Returns None for a file in no supported language; ``language`` is the one to use
        when the path tells none (an untitled buffer, a notebook's cells). Documents outside
        the roots or ignored are parsed (their own symbols are available through ``file``)
        but do not enter the name map.
        """
        path = os.path.realpath(path)
        language = language_for_path(path) or language
        if language is None:
            return None
        source = text.encode("utf-8", "surrogatepass")
        with self._doc_lock:
            doc = self._files.open.get(path)
            if doc is not None and doc.source == source:
                return doc.symbols
            indexed = doc.indexed if doc is not None else self.is_indexable(path)
            new = parse_document(path, source, language, doc, indexed)
            with self._lock:
                self._files.open[path] = new
                self._files.refresh_names(path)
                if self._files.forward is not None:
                    self._files.forward.pop(path, None)
            if doc is None or doc.symbols.imports != new.symbols.imports or doc.names != new.names:
                self._resolver.forget()
        return new.symbols

    def close_document(self, path: str) -> None:
        """Forget an open document's unsaved text; the disk version is authoritative again."""
        path = os.path.realpath(path)
        with self._doc_lock, self._lock:
            doc = self._files.open.pop(path, None)
            if doc is None:
                return
            self._files.refresh_names(path)
            if self._files.forward is not None:
                self._files.forward.pop(path, None)
        self._resolver.forget()
        if doc.indexed:
            self.update_file(path)

    # --- files changed on disk --------------------------------------------------------

    def update_file(self, path: str) -> FileSymbols | None:
        """Re-index one file from disk (a file watcher event). Returns its symbols, or
        None when the file is gone, not indexable or not a source file (a changed
        ``.gitignore`` or project file is taken into account)."""
        path = os.path.realpath(path)
        base = os.path.basename(path)
        root = self.root_of(path)
        if root is None:
            return None
        if base == ".gitignore":
            self._rules[root].invalidate(os.path.dirname(path))
            return None
        if base in PROJECT_FILES:
            with self._lock:
                if os.path.exists(path):
                    self._project_files.add(path)
                else:
                    self._project_files.discard(path)
                self._files.forward = None
            self._resolver.reset(project_files_changed=True)
            return None
        if not os.path.isfile(path) or not self.is_indexable(path):
            self.remove_file(path)
            return None
        language = language_for_path(path)
        assert language is not None
        with self._lock:
            previous = self._files.entries.get(path)
        try:
            st = os.stat(path)
        except OSError:
            self.remove_file(path)
            return None
        if (
            previous is not None
            and previous.size == st.st_size
            and previous.mtime_ns == st.st_mtime_ns
        ):
            return self._reader.disk_file(path)
        result = index_file(path, language, previous.hash if previous else None, self.max_file_size)
        file_set_changed = previous is None or result.status in ("missing", "skipped")
        self._apply([result])
        if file_set_changed:
            self._resolver.reset(project_files_changed=False)
            with self._lock:
                self._files.forward = None
        elif result.status == "parsed":
            self._resolver.forget()
        if result.status in ("missing", "skipped"):
            return None
        return self._reader.disk_file(path)

    def remove_file(self, path: str) -> None:
        """Drop a deleted file (or every file under a deleted folder)."""
        path = os.path.realpath(path)
        with self._lock:
            if path in self._files.entries:
                doomed = [path]
            else:
                prefix = path.rstrip(os.sep) + os.sep
                doomed = [p for p in self._files.entries if p.startswith(prefix)]
            by_root: dict[str, list[str]] = {}
            for p in doomed:
                entry = self._files.entries[p]
                self._files.drop(p)
                by_root.setdefault(entry.root, []).append(p)
            if doomed:
                self._files.forward = None
        for root, paths in by_root.items():
            self._persistence.delete(root, paths)
        if doomed:
            self._resolver.reset(project_files_changed=False)

    # --- lookups ----------------------------------------------------------------------

    def open_symbols(self, path: str, source: bytes) -> FileSymbols | None:
        """The symbols of the open document ``path`` if they were extracted from exactly
        ``source`` (the re-index runs a moment after each edit), else None."""
        doc = self._files.open.get(path)
        return doc.symbols if doc is not None and doc.source == source else None

    def file(self, path: str) -> FileSymbols | None:
        """The symbols of a file: its open document's if open, else the indexed version."""
        return self._reader.file(path)

    def summary(self, path: str) -> ExportSummary | None:
        """Top-level names and imports of a file, without building its FileSymbols."""
        return self._reader.summary(path)

    def text(self, path: str) -> str | None:
        """The current text of a file: the open document's, else the disk's (cached)."""
        return self._reader.text(path)

    def files(self) -> list[str]:
        """Every indexed file (sorted)."""
        with self._lock:
            return self._files.files()

    def prepare_lookups(self) -> None:
        """Build the name map now (idle time after a build) rather than at the first
        lookup."""
        with self._lock:
            self._files.name_map()

    def definitions_named(self, name: str) -> list[Definition]:
        """Every definition called ``name`` in the workspace (open documents' versions)."""
        return self._reader.definitions_named(name)

    def resolve_import(self, from_path: str, imp: Import) -> list[str]:
        """The workspace files that ``imp``, found in ``from_path``, refers to."""
        language = self._language_of(from_path)
        if language is None:
            return []
        return self._resolver.resolve(from_path, imp, language)

    def imports_of(self, path: str) -> frozenset[str]:
        """The workspace files ``path``'s imports resolve to: one file's edges of the
        import graph, resolved once and kept (with the graph ``importers_of`` reads)
        until the file or the set of files changes."""
        with self._lock:
            forward = self._files.forward
            found = forward.get(path) if forward is not None else None
        if found is not None:
            return found
        targets: set[str] = set()
        symbols = self.summary(path)
        if symbols is not None:
            for imp in symbols.imports:
                targets.update(self.resolve_import(path, imp))
        targets.discard(path)
        found = frozenset(targets)
        with self._lock:
            if forward is None and self._files.forward is None:
                self._files.forward = {}
            elif self._files.forward is not forward:
                return found  # the graph was dropped meanwhile: do not keep a stale edge
            assert self._files.forward is not None
            self._files.forward[path] = found
        return found

    def importers_of(self, path: str) -> list[str]:
        """Files whose imports resolve to ``path`` (the reverse import graph).

        The graph is built on the first call (it resolves every import of the
        workspace) and then kept up to date file by file.
        """
        with self._lock:
            forward = self._files.forward
            files = [p for p, e in self._files.entries.items() if e.language != SKIPPED]
            files.extend(
                p for p, d in self._files.open.items() if d.indexed and p not in self._files.entries
            )
        if forward is None:
            forward = {}
        missing = [p for p in files if p not in forward]
        for p in missing:
            symbols = self.summary(p)
            if symbols is None:
                continue
            targets: set[str] = set()
            for imp in symbols.imports:
                targets.update(self.resolve_import(p, imp))
            targets.discard(p)
            forward[p] = frozenset(targets)
        with self._lock:
            if self._files.forward is None:
                self._files.forward = forward
            else:
                for p in missing:
                    if p in forward:
                        self._files.forward.setdefault(p, forward[p])
            return sorted(p for p, targets in forward.items() if path in targets)

    def root_of(self, path: str) -> str | None:
        """The workspace root holding ``path`` (the deepest one), if any."""
        for root in self._roots_by_depth:
            if is_inside(path, root):
                return root
        return None

    def is_indexable(self, path: str) -> bool:
        """Inside a root, not ignored or in a skipped folder, a supported language and
        not over the size limit (a file not on disk counts as small). Never a path that
        is not absolute (an editor's `untitled:` buffer)."""
        if not os.path.isabs(path):
            return False
        path = os.path.realpath(path)
        root = self.root_of(path)
        if root is None or path == root or language_for_path(path) is None:
            return False
        try:
            if os.path.getsize(path) > self.max_file_size:
                return False
        except OSError:
            pass
        for other in self._roots_by_depth:
            if other != root and is_inside(other, root) and is_inside(path, other):
                return False
        return not self._rules[root].is_path_ignored(path)

    def stats(self) -> IndexStats:
        """What the index holds now (parsed/reused/seconds are zero: see ``build``)."""
        languages: dict[str, int] = {}
        with self._lock:
            files = definitions = 0
            for e in self._files.entries.values():
                if e.language == SKIPPED:
                    continue
                files += 1
                definitions += e.definitions
                languages[e.language] = languages.get(e.language, 0) + 1
        return IndexStats(files, definitions, dict(sorted(languages.items())), 0, 0, 0.0)

    def definition_count(self) -> int:
        """Exact number of definitions (decodes every file's symbols: slow, for reports)."""
        total = 0
        for path in self.files():
            symbols = self.file(path)
            total += len(symbols.definitions) if symbols is not None else 0
        return total

    def database_paths(self) -> list[str]:
        """The SQLite files holding this index (one per root with persistence on)."""
        return [s.path for s in (self._persistence.store(r) for r in self.roots) if s is not None]

    def damaged_databases(self) -> list[str]:
        """The databases found damaged since the index was opened: each was set aside
        (``<name>.corrupt``) and is being rebuilt."""
        return [s.path for s in self._persistence.opened() if s.recovered]

    def size_on_disk(self) -> int:
        """Bytes of the persisted index."""
        return sum(
            s.size_on_disk()
            for s in (self._persistence.store(r) for r in self.roots)
            if s is not None
        )

    def close(self) -> None:
        """Close the databases; the index must not be used afterwards."""
        if self._closed:
            return
        self._closed = True
        with self._lock:
            self._files.open.clear()
        self._persistence.close()

    def __enter__(self) -> WorkspaceIndex:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # --- the view used by import resolution -------------------------------------------

    def has_file(self, path: str) -> bool:
        """Whether ``path`` is an indexed file (or an open document the index follows)."""
        return self._files.has_file(path)

    def has_dir(self, path: str) -> bool:
        """Whether some indexed file lies under the folder ``path``."""
        return path in self._files.dirs

    def files_in_dir(self, folder: str) -> list[str]:
        """Indexed files directly in ``folder``."""
        with self._lock:
            return sorted(self._files.by_dir.get(folder, ()))

    def files_named(self, basename: str) -> list[str]:
        """Indexed files with this base name."""
        with self._lock:
            return sorted(self._files.by_basename.get(basename, ()))

    def dirs_named(self, basename: str) -> list[str]:
        """Folders with this base name that hold indexed files."""
        with self._lock:
            return sorted(d for d in self._files.dirs if os.path.basename(d) == basename)

    def project_files(self) -> list[str]:
        """go.mod, tsconfig.json, package.json, Cargo.toml ... found by the last build."""
        with self._lock:
            return sorted(self._project_files)

    def _language_of(self, path: str) -> str | None:
        return self._files.language_of(path) or language_for_path(path)


def iter_definitions(index: WorkspaceIndex) -> Iterable[Definition]:
    """Every definition of the workspace (decodes every file: for tools and reports)."""
    for path in index.files():
        symbols = index.file(path)
        if symbols is not None:
            yield from symbols.definitions
