"""The fill: which definitions nothing near the cursor names yet come first.

``context.retrieve`` offers, after everything the code names, the definitions the code
may use next: its package's (Go, Java), the names of modules it imports whole, and the
language's own sources (``Retrieval.fill_sources``). This module ranks them: what the
file's name is about first, then what the files of its folder use most
(docs/context.md, "Sources and scores").
"""

from __future__ import annotations

import functools
import os
import re
import threading
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass

from context.lang import FillSource
from context.languages import spec as language_spec
from context.types import Definition, FileSymbols, Import

# Kinds that are no name a file uses (a Rust `impl`, a module).
NOT_REFERABLE = frozenset({"impl", "module"})

# (uses nearby, rank of the source, order of declaration, name, where, the definition or
# the file that re-exports it: resolved only if chosen)
Offer = tuple[int, int, int, str, str, Definition | tuple[str, Import, str]]

_LOCK = threading.Lock()


@dataclass(frozen=True)
class Popularity:
    """Uses of a name by the files of the folder, the current file counted twice."""

    neighbours: dict[str, int]
    own: frozenset[str]

    def get(self, name: str, default: int = 0) -> int:
        return self.neighbours.get(name, default) + (2 if name in self.own else 0)


# The last folders' counts, by folder and file extension: the files of a folder and
# their symbols by identity, and how many of them use each name.
_POPULAR_CACHE: dict[tuple[str, str], tuple[dict[int, FileSymbols], dict[str, int]]] = {}
# A folder's counts are brought up to date file by file when this few of its files
# differ from the cached ones (another current file, a neighbour edited), else counted
# afresh.
_POPULAR_STEPS = 8


def folder_popularity(path: str, others: list[FileSymbols], own: frozenset[str]) -> Popularity:
    """How many of `others` (the files of `path`'s folder) use each name, `own` (the
    current file's names) counted twice."""
    # The neighbours' counts stay while they do (this file changes at each keystroke),
    # and moving to another file of the folder swaps two files' uses, not sixty.
    key = (os.path.dirname(path), os.path.splitext(path)[1])
    members = {id(o): o for o in others}
    with _LOCK:
        cached = _POPULAR_CACHE.get(key)
    base: dict[str, int] | None = None
    if cached is not None and len(members) == len(others):
        old_members, old_counts = cached
        added = [o for k, o in members.items() if k not in old_members]
        removed = [o for k, o in old_members.items() if k not in members]
        if not added and not removed:
            base = old_counts
        elif len(added) + len(removed) <= _POPULAR_STEPS:
            base = dict(old_counts)
            for other in added:
                for name in _uses(other):
                    base[name] = base.get(name, 0) + 1
            for other in removed:
                for name in _uses(other):
                    left = base[name] - 1
                    if left:
                        base[name] = left
                    else:
                        del base[name]
    if base is None:
        counts: Counter[str] = Counter()
        for other in others:
            counts.update(_uses(other))  # (a C loop: a folder of 60 files in ~1 ms)
        base = dict(counts)
    if cached is None or base is not cached[1]:
        with _LOCK:
            # `members` keeps the ids valid.
            _POPULAR_CACHE.pop(key, None)
            _POPULAR_CACHE[key] = (members, base)
            while len(_POPULAR_CACHE) > 8:
                _POPULAR_CACHE.pop(next(iter(_POPULAR_CACHE)))
    return Popularity(base, own)


def fill_offers(
    file_of: Callable[[str], FileSymbols | None],
    path: str,
    package: dict[str, list[Definition]],
    sources: list[FillSource],
    taken: set[str],
    popular: Popularity,
    about: FileTopic,
) -> list[Offer]:
    """Every definition of the package and the sources not in `taken`, best first."""
    offers: list[Offer] = []
    for name, found in package.items():
        if name not in taken:
            offers.append((popular.get(name, 0), 0, 0, name, "its package", found[0]))
    seen_files: set[str] = set()
    for source in sources:
        head = source.label
        rank = source.rank
        for where in source.files:
            if where in seen_files or where == path:
                continue
            seen_files.add(where)
            other = file_of(where)
            if other is None:
                continue
            theirs = language_spec(other.language).retrieval
            worthy = theirs.fill_worthy
            for d in other.definitions:
                if d.parent or d.kind in NOT_REFERABLE:
                    continue
                if not (d.exported or source.everything):
                    continue
                if not worthy(d.name):
                    continue
                if d.name not in taken:
                    offers.append((popular.get(d.name, 0), rank, d.start_line, d.name, head, d))
            # Names a package's `__init__` or index re-exports from its modules.
            if theirs.reexports:
                for imp in other.imports:
                    locals_ = imp.local_names or imp.names
                    for original, local in zip(imp.names, locals_, strict=False):
                        if local in taken or "*" in (local, original) or local[:1] == "_":
                            continue
                        reexport = (where, imp, original)
                        offers.append(
                            (popular.get(local, 0), rank, imp.line, local, head, reexport)
                        )
    # What the file is about first: a name sharing the words of the file's own name
    # (`ReadOnlyStringWrapper` extends `ReadOnlyStringPropertyBase`, `timer_test.go`
    # calls `NewTimer`), and in a test file the names of the file it tests.
    offers.sort(key=lambda o: (not about.covers(o[3], o[5]), -o[0], o[1], o[2], o[3]))
    return offers


_TEST_WORDS = frozenset({"test", "tests", "spec", "specs"})


class FileTopic:
    """What a file's name says it is about: its words (test affixes left out) and, for a
    test file, the stem of the file it tests (`timer_test.go`, `test_timer.py`,
    `TimerTest.java`, `timer.spec.ts` -> `timer`)."""

    def __init__(self, path: str) -> None:
        stem = os.path.basename(path).split(".", 1)[0]
        words = name_words(stem)
        self.words = words - _TEST_WORDS
        self.need = min(2, len(self.words))
        tested = re.sub(r"(?i)^tests?_|_tests?$|Tests?$", "", stem)
        is_test = tested != stem or words & _TEST_WORDS != frozenset()
        self.tested = tested.lower() if is_test and tested else ""

    def covers(self, name: str, target: object) -> bool:
        if self.need and len(self.words & name_words(name)) >= self.need:
            return True
        if not self.tested:
            return False
        where = target.path if isinstance(target, Definition) else ""
        return os.path.basename(where).split(".", 1)[0].lower() == self.tested


_WORD_PART = re.compile(r"[A-Z]+(?![a-z])|[A-Z]?[a-z]+|\d+")


@functools.lru_cache(maxsize=65536)
def name_words(name: str) -> frozenset[str]:
    """The words of a camelCase or snake_case name, lowercased, of 3 letters or more."""
    return frozenset(w.lower() for w in _WORD_PART.findall(name) if len(w) >= 3)


# Per file (by its symbols' identity, which the index keeps while the file is unchanged):
# the names it uses, its own definitions left out (a header does not use what it
# declares).
_USES_CACHE: dict[int, tuple[FileSymbols, frozenset[str]]] = {}
_USES_CACHE_SIZE = 4096


def _uses(fs: FileSymbols) -> frozenset[str]:
    with _LOCK:
        hit = _USES_CACHE.get(id(fs))
    if hit is not None and hit[0] is fs:
        return hit[1]
    uses = fs.references.difference(d.name for d in fs.definitions)
    with _LOCK:
        _USES_CACHE[id(fs)] = (fs, uses)  # `fs` keeps the id valid
        while len(_USES_CACHE) > _USES_CACHE_SIZE:
            del _USES_CACHE[next(iter(_USES_CACHE))]
    return uses
