"""The read side of the index: symbols read back for lookups, as cheaply as they can be.

A file's symbols come from its open document if it is open; else from the caches of
``FileTable`` (decoded symbols, ``FileSymbols``, export summaries), else from the
marshalled blob kept in memory until it is saved, else from the store. Each value is
cached only if the file did not change while it was being built. Nothing here takes
the index's lock for more than dictionary work.
"""

from __future__ import annotations

import logging
import os
import threading
from collections.abc import Callable
from typing import Any

from context import symbols as sym
from context.file_table import LRU, SKIPPED, Entry, FileTable
from context.imports import ExportSummary
from context.persist import Persistence
from context.types import Definition, FileSymbols, Import
from context.walk import read_regular

log = logging.getLogger(__name__)


class SymbolReader:
    """Lookups over a ``FileTable`` guarded by ``lock`` (the index's)."""

    def __init__(
        self,
        files: FileTable,
        lock: threading.RLock,
        persistence: Persistence,
        max_file_size: int,
    ) -> None:
        self.files = files
        self.lock = lock
        self.persistence = persistence
        self.max_file_size = max_file_size

    def file(self, path: str) -> FileSymbols | None:
        """The symbols of a file: its open document's if open, else the indexed version."""
        doc = self.files.open.get(path)
        if doc is not None:
            return doc.symbols
        return self.disk_file(path)

    def disk_file(self, path: str) -> FileSymbols | None:
        """The symbols of the indexed (disk) version of a file, with its references."""

        def build(entry: Entry, raw: sym.RawSymbols) -> FileSymbols:
            references = frozenset[str]()
            data, _ = read_regular(path, self.max_file_size)
            if data is not None:
                references = sym.references_of(data, entry.language)
            return sym.to_file_symbols(path, entry.language, raw, references)

        return self._from_raw(self.files.file_cache, path, build)  # type: ignore[no-any-return]

    def _from_raw(
        self, cache: LRU, path: str, build: Callable[[Entry, sym.RawSymbols], Any]
    ) -> Any:
        """``build(entry, raw symbols)`` for an indexed file, kept in ``cache`` until the
        file's entry changes."""
        with self.lock:
            cached = cache.get_fresh(path)
            entry = self.files.entries.get(path)
        if cached is not None:
            return cached
        if entry is None or entry.language == SKIPPED:
            return None
        raw = self._raw(path, entry)
        if raw is None:
            return None
        value = build(entry, raw)
        self._keep(cache, path, entry, value)
        return value

    def _keep(self, cache: LRU, path: str, entry: Entry, value: Any) -> None:
        """Cache ``value`` derived from ``entry``, unless the file changed meanwhile."""
        with self.lock:
            if self.files.entries.get(path) is entry:
                cache.put(path, value)

    def _raw(self, path: str, entry: Entry) -> sym.RawSymbols | None:
        with self.lock:
            raw = self.files.raw_cache.get_fresh(path)
            blob = entry.blob
        if raw is not None:
            return raw  # type: ignore[no-any-return]
        if blob is None:
            store = self.persistence.store(entry.root) if entry.root else None
            blob = store.symbols(path) if store is not None else None
            if blob is None:
                return None
        try:
            raw = sym.decode(blob)
        except (ValueError, EOFError, TypeError):
            log.warning("corrupt index entry for %s", path)
            return None
        self._keep(self.files.raw_cache, path, entry, raw)
        return raw

    def summary(self, path: str) -> ExportSummary | None:
        """Top-level names and imports of a file, without building its FileSymbols."""
        doc = self.files.open.get(path)
        if doc is not None:
            return ExportSummary(
                frozenset(d.name for d in doc.symbols.definitions if not d.parent),
                doc.symbols.imports,
            )
        return self._from_raw(  # type: ignore[no-any-return]
            self.files.summary_cache,
            path,
            lambda entry, raw: ExportSummary(
                frozenset(d[0] for d in raw[0] if not d[6]),
                tuple(Import(i[0], i[1], i[2], i[3], i[4], i[5]) for i in raw[1]),
            ),
        )

    def text(self, path: str) -> str | None:
        """The current text of a file: the open document's, else the disk's (cached)."""
        doc = self.files.open.get(path)
        if doc is not None:
            return doc.source.decode("utf-8", "replace")
        try:
            st = os.stat(path)
        except OSError:
            return None
        with self.lock:
            cached = self.files.text_cache.get_fresh(path)
        if cached is not None and cached[0] == st.st_size and cached[1] == st.st_mtime_ns:
            return cached[2]  # type: ignore[no-any-return]
        # Only a regular file the index would take in whole: never a FIFO (its open
        # blocks) or a log grown to gigabytes.
        data, fresh = read_regular(path, self.max_file_size)
        if data is None or fresh is None:
            return None
        text = data.decode("utf-8", "replace")
        with self.lock:
            self.files.text_cache.put(path, (fresh.st_size, fresh.st_mtime_ns, text))
        return text

    def definitions_named(self, name: str) -> list[Definition]:
        """Every definition called ``name`` in the workspace (open documents' versions)."""
        with self.lock:
            cached = self.files.defs_cache.get_fresh(name)
            paths = sorted(self.files.name_map().get(name, ()))
        if cached is not None:
            return list(cached)
        out: list[Definition] = []
        for path in paths:
            doc = self.files.open.get(path)
            if doc is not None:
                out.extend(d for d in doc.symbols.definitions if d.name == name)
                continue
            with self.lock:
                entry = self.files.entries.get(path)
                symbols = self.files.file_cache.get_fresh(path)
            if symbols is not None:
                out.extend(d for d in symbols.definitions if d.name == name)
                continue
            if entry is None:
                continue
            raw = self._raw(path, entry)
            if raw is None:
                continue
            out.extend(
                Definition(
                    d[0],
                    d[1],  # type: ignore[arg-type]
                    path,
                    d[2],
                    d[3],
                    d[4],
                    sym.clean_doc(d[5]),
                    d[6],
                    d[7],
                    d[8],
                )
                for d in raw[0]
                if d[0] == name
            )
        with self.lock:
            if sorted(self.files.name_map().get(name, ())) == paths:
                self.files.defs_cache.put(name, tuple(out))
        return out
