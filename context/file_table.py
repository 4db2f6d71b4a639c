"""The index's in-memory tables: one entry per file on disk, the open documents, and
the maps derived from them (definition names, base names, folders), with the caches
that must forget a file when it changes.

``FileTable`` is plain data and bookkeeping, with no lock of its own: the index calls
it with its lock held. ``add``, ``drop`` and ``replace`` keep every map and cache in
step with ``entries``; ``refresh_names`` points the name map at the current version of
a file (its open document's names while it is open and followed).
"""

from __future__ import annotations

import os
from collections import OrderedDict
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

from context.open_documents import OpenDocument

SKIPPED = ""  # language of a persisted entry that is not indexed (binary, too big)


@dataclass(slots=True)
class Entry:
    """What the index keeps in memory for one file on disk."""

    size: int
    mtime_ns: int
    hash: bytes
    language: str
    names: tuple[str, ...]
    definitions: int = 0
    blob: bytes | None = None  # marshalled symbols, when not (yet) in the store
    root: str = ""


def _add_names(by_name: dict[str, set[str]], path: str, names: Iterable[str]) -> None:
    """Record in the name map that ``path`` defines ``names``."""
    for name in names:
        paths = by_name.get(name)
        if paths is None:
            by_name[name] = {path}
        else:
            paths.add(path)


class LRU(OrderedDict[str, Any]):
    """A dictionary that keeps its ``size`` most recently used keys."""

    def __init__(self, size: int) -> None:
        super().__init__()
        self.size = size

    def get_fresh(self, key: str) -> Any:
        value = self.get(key)
        if value is not None:
            self.move_to_end(key)
        return value

    def put(self, key: str, value: Any) -> None:
        self[key] = value
        self.move_to_end(key)
        while len(self) > self.size:
            self.popitem(last=False)


class FileTable:
    """Files, open documents and the maps derived from them (see the module docstring)."""

    def __init__(self, root_of: Callable[[str], str | None]) -> None:
        self._root_of = root_of
        self.entries: dict[str, Entry] = {}
        self.open: dict[str, OpenDocument] = {}
        self.names_of: dict[str, tuple[str, ...]] = {}
        # name -> files defining it, built from `names_of` at the first lookup (a
        # restart on an unchanged workspace then reads no name; see `name_map`).
        self.by_name: dict[str, set[str]] | None = None
        self.by_basename: dict[str, set[str]] = {}
        self.dirs: dict[str, int] = {}  # folder (and ancestors up to the root) -> file count
        self.by_dir: dict[str, set[str]] = {}  # folder -> files directly in it
        self.raw_cache = LRU(4096)  # path -> RawSymbols of the disk version
        self.file_cache = LRU(1024)  # path -> FileSymbols of the disk version
        self.defs_cache = LRU(4096)  # name -> tuple[Definition, ...]
        self.summary_cache = LRU(16384)  # path -> ExportSummary of the disk version
        # path -> (size, mtime_ns, text). One request reads up to ~100 files (a Java
        # package's fill, similar windows): a smaller cache thrashed, re-reading them
        # all at every keystroke. The texts are mostly the ones the lines cache of
        # context/snippets.py (256 files) holds anyway.
        self.text_cache = LRU(256)
        # The import graph: file -> files its imports resolve to (None until
        # ``WorkspaceIndex.importers_of`` first needs it).
        self.forward: dict[str, frozenset[str]] | None = None

    def add(self, path: str, entry: Entry) -> None:
        self.entries[path] = entry
        if entry.language == SKIPPED:
            return
        base = os.path.basename(path)
        paths = self.by_basename.get(base)
        if paths is None:
            self.by_basename[base] = {path}
        else:
            paths.add(path)
        folder = os.path.dirname(path)
        siblings = self.by_dir.get(folder)
        if siblings is None:
            self.by_dir[folder] = {path}
            self._count_dir(folder, entry.root or self._root_of(path) or folder, +1)
        else:
            siblings.add(path)
        self.refresh_names(path)

    def _count_dir(self, folder: str, root: str, step: int) -> None:
        """``dirs[d]`` counts what makes ``d`` hold indexed files: 1 for files directly
        in it, plus each child folder in ``dirs``. Only a folder that appears or
        disappears changes its parent's count, so most updates stop at once."""
        while True:
            count = self.dirs.get(folder, 0) + step
            if count > 0:
                self.dirs[folder] = count
            else:
                self.dirs.pop(folder, None)
            appeared_or_vanished = count == (1 if step > 0 else 0)
            if not appeared_or_vanished or folder == root or len(folder) <= len(root):
                break
            folder = os.path.dirname(folder)

    def drop(self, path: str) -> None:
        entry = self.entries.pop(path, None)
        self.raw_cache.pop(path, None)
        self.file_cache.pop(path, None)
        self.summary_cache.pop(path, None)
        self.text_cache.pop(path, None)
        if entry is None or entry.language == SKIPPED:
            return
        paths = self.by_basename.get(os.path.basename(path))
        if paths is not None:
            paths.discard(path)
        folder = os.path.dirname(path)
        siblings = self.by_dir.get(folder)
        if siblings is not None:
            siblings.discard(path)
            if not siblings:
                del self.by_dir[folder]
                self._count_dir(folder, entry.root or self._root_of(path) or folder, -1)
        self.refresh_names(path)

    def replace(self, path: str, entry: Entry) -> None:
        old = self.entries.get(path)
        if old is not None and old.language != SKIPPED and entry.language != SKIPPED:
            self.entries[path] = entry
            self.raw_cache.pop(path, None)
            self.file_cache.pop(path, None)
            self.summary_cache.pop(path, None)
            self.refresh_names(path)
        else:
            if old is not None:
                self.drop(path)
            self.add(path, entry)
        if self.forward is not None:
            self.forward.pop(path, None)

    def refresh_names(self, path: str) -> None:
        """Point the name map at the current version of ``path`` (open or on disk)."""
        doc = self.open.get(path)
        if doc is not None and doc.indexed:
            names = doc.names
        else:
            entry = self.entries.get(path)
            names = entry.names if entry is not None and entry.language != SKIPPED else ()
        old = self.names_of.pop(path, ())
        by_name = self.by_name
        if by_name is None:  # not built yet: built from `names_of` when first asked
            if names:
                self.names_of[path] = names
            return
        cached = self.defs_cache
        for name in old:
            paths = by_name.get(name)
            if paths is not None:
                paths.discard(path)
                if not paths:
                    del by_name[name]
            if cached:
                cached.pop(name, None)
        if names:
            self.names_of[path] = names
            _add_names(by_name, path, names)
            if cached:
                for name in names:
                    cached.pop(name, None)

    def name_map(self) -> dict[str, set[str]]:
        """Name -> files defining it. Built at the first lookup: a restart on an unchanged
        workspace need not read its 40,000 names before the first completion asks for
        one (``Workspace.build`` asks right away, in the background)."""
        by_name = self.by_name
        if by_name is None:
            by_name = {}
            for path, names in self.names_of.items():
                _add_names(by_name, path, names)
            self.by_name = by_name
        return by_name

    def has_file(self, path: str) -> bool:
        """Whether ``path`` is an indexed file (or an open document the index follows: an
        ignored file or one outside the workspace, open in the editor, is none, lest its
        content reach another file's context through an import)."""
        entry = self.entries.get(path)
        if entry is not None:
            return entry.language != SKIPPED
        doc = self.open.get(path)
        return doc is not None and doc.indexed

    def files(self) -> list[str]:
        """Every indexed file (sorted)."""
        return sorted(p for p, e in self.entries.items() if e.language != SKIPPED)

    def language_of(self, path: str) -> str | None:
        """The language the index read ``path`` in (its open document's first), if any."""
        doc = self.open.get(path)
        if doc is not None:
            return doc.language
        entry = self.entries.get(path)
        if entry is not None and entry.language != SKIPPED:
            return entry.language
        return None
