"""Resolve an import to the workspace files it refers to.

Resolution works on the index's in-memory view of the workspace (which files exist,
their symbols, the project files found by the walk) and never touches the disk except
to read small project files (``go.mod``, ``tsconfig.json``, ``package.json``,
``Cargo.toml``), which are cached until the index says they changed (``reset``).

``ImportResolver`` holds what every language shares: the memo of results, the walk
that follows re-exports (Python packages, TypeScript index files) to the file that
defines a name, lookups by path suffix, and the reading of project files. What an
import means in each language is its ``Resolver`` in ``context/lang/`` (each file's
docstring says how that language resolves).
"""

from __future__ import annotations

import json
import logging
import os
import re
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Protocol

from context.lang import Resolver
from context.languages import resolver_class
from context.types import Import
from context.walk import read_text

log = logging.getLogger(__name__)

# How many re-export hops to follow from a package/index file to the defining file.
MAX_REEXPORT_DEPTH = 4


@dataclass(frozen=True, slots=True)
class ExportSummary:
    """What re-export following needs to know about a file."""

    top_level: frozenset[str]  # names defined at the top level (no parent)
    imports: tuple[Import, ...]


class WorkspaceView(Protocol):
    """What resolution needs from the index."""

    def has_file(self, path: str) -> bool: ...
    def has_dir(self, path: str) -> bool: ...
    def files_in_dir(self, folder: str) -> list[str]: ...
    def files_named(self, basename: str) -> list[str]: ...
    def dirs_named(self, basename: str) -> list[str]: ...
    def summary(self, path: str) -> ExportSummary | None: ...
    def root_of(self, path: str) -> str | None: ...
    def project_files(self) -> list[str]: ...

    @property
    def roots(self) -> Sequence[str]: ...


class ImportResolver:
    """Resolves imports against a ``WorkspaceView``, with each language's ``Resolver``
    (from ``context.languages``, or ``resolvers`` given a language name); it is the
    ``ResolveHost`` they ask for the steps they share."""

    def __init__(
        self,
        view: WorkspaceView,
        resolvers: Callable[[str], type[Resolver] | None] = resolver_class,
    ) -> None:
        self.view = view
        self._lock = threading.Lock()
        self._resolver_class = resolvers
        # One instance per class: languages sharing a class share its caches.
        self._resolvers: dict[type[Resolver], Resolver] = {}
        # Results by (language, folder or file, module, names, kind); many files of a
        # folder import the same modules. `generation` guards against filling the memo
        # with a result computed before a change.
        self._memo: dict[tuple[str, str, str, tuple[str, ...], str], list[str]] = {}
        self._generation = 0
        # The re-export walk under way in this thread: its depth, and the (file, name)
        # pairs it has looked at (a star-import mesh would otherwise be walked N^depth
        # times, and resolving inside the walk restarted its depth at each hop).
        self._walk = threading.local()

    def forget(self) -> None:
        """Forget memoised results (some file's contents changed: re-exports may differ)."""
        with self._lock:
            self._generation += 1
            self._memo.clear()

    def reset(self, project_files_changed: bool = True) -> None:
        """Forget what was derived from the file set (and project files, if they changed)."""
        with self._lock:
            self._generation += 1
            self._memo.clear()
            for resolver in self._resolvers.values():
                resolver.reset(project_files_changed)

    def resolve(self, from_path: str, imp: Import, language: str) -> list[str]:
        """The workspace files ``imp`` (found in ``from_path``) refers to, best first."""
        resolver = self._resolver(language)
        if resolver is None:
            return []
        # Most languages resolve against the importing file's folder (memoised per
        # folder); Rust against the file itself (`mod` folders).
        place = from_path if resolver.per_file else os.path.dirname(from_path)
        key = (language, place, imp.module, imp.names, imp.kind)
        found = self._memo.get(key)
        if found is None:
            generation = self._generation
            found = self._resolve(resolver, from_path, imp)
            # A result found inside a re-export walk may be cut by its depth: not kept.
            inside_walk = getattr(self._walk, "seen", None) is not None
            if generation == self._generation and not inside_walk:
                if len(self._memo) > 200_000:
                    self._memo.clear()
                self._memo[key] = found
        return [p for p in found if p != from_path or imp.kind == "mod"]

    def _resolver(self, language: str) -> Resolver | None:
        cls = self._resolver_class(language)
        if cls is None:
            return None
        resolver = self._resolvers.get(cls)
        if resolver is None:
            with self._lock:
                resolver = self._resolvers.get(cls)
                if resolver is None:
                    resolver = self._resolvers[cls] = cls(self)
        return resolver

    def _resolve(self, resolver: Resolver, from_path: str, imp: Import) -> list[str]:
        try:
            out = resolver.resolve(from_path, imp)
        except (OSError, ValueError, RecursionError) as exc:
            log.debug("cannot resolve %r from %s: %s", imp.module, from_path, exc)
            return []
        return list(dict.fromkeys(out))

    # --- what language resolvers share (``context.lang.ResolveHost``) ------------------

    def read_text(self, path: str) -> str | None:
        """A small project file (``go.mod``, ``Cargo.toml``), or None."""
        return read_text(path)

    def read_jsonc(self, path: str) -> dict[str, object] | None:
        """A JSON object from a file that may hold comments and trailing commas."""
        return _read_jsonc(path)

    def follow(self, path: str, name: str, language: str) -> list[str]:
        """The file that defines ``name`` exported by ``path``: ``path`` itself unless it
        only re-exports the name from elsewhere, at most ``MAX_REEXPORT_DEPTH`` files deep
        (counted across the resolutions made on the way)."""
        walk = self._walk
        if getattr(walk, "seen", None) is not None:  # inside a walk: go on from its depth
            return self._follow_at(path, name, language, walk.depth)
        walk.seen, walk.depth = set(), 0
        try:
            return self._follow_at(path, name, language, 0)
        finally:
            walk.seen, walk.depth = None, 0

    def _follow_at(self, path: str, name: str, language: str, depth: int) -> list[str]:
        walk = self._walk
        if name in ("*", "default") or (path, name) in walk.seen:
            return [path]
        walk.seen.add((path, name))  # (also where the depth stops it: not walked on later)
        if depth >= MAX_REEXPORT_DEPTH:
            return [path]
        symbols = self.view.summary(path)
        if symbols is None:
            return [path]
        if name in symbols.top_level:
            return [path]
        outer, walk.depth = walk.depth, depth + 1  # what resolving from here may follow
        try:
            for imp in symbols.imports:
                local = imp.local_names or imp.names
                if name in local:
                    original = imp.names[local.index(name)]
                    targets = self.resolve(
                        path, Import(imp.module, (original,), kind=imp.kind), language
                    )
                    if targets:
                        return [
                            t
                            for tgt in targets
                            for t in self._follow_at(tgt, original, language, depth + 1)
                        ]
                elif imp.alias == name and not imp.names:
                    targets = self.resolve(path, Import(imp.module, kind=imp.kind), language)
                    if targets:
                        return targets
            for imp in symbols.imports:
                if "*" in imp.names:
                    for target in self.resolve(path, Import(imp.module, kind=imp.kind), language):
                        found = self._follow_at(target, name, language, depth + 1)
                        if found != [target] or self._defines(target, name):
                            return found
        finally:
            walk.depth = outer
        return [path]

    def _defines(self, path: str, name: str) -> bool:
        symbols = self.view.summary(path)
        return symbols is not None and name in symbols.top_level

    def with_names(self, target: str, imp: Import, language: str) -> list[str]:
        """The files defining each imported name, ``target`` for a whole-module import."""
        if not imp.names:
            return [target]
        out: list[str] = []
        for name in imp.names:
            out.extend(self.follow(target, name, language))
        return out

    def by_suffix(self, rel: str, near: str) -> str | None:
        """The indexed file whose path ends with ``rel``, nearest to ``near``."""
        suffix = os.sep + rel
        candidates = [p for p in self.view.files_named(os.path.basename(rel)) if p.endswith(suffix)]
        if not candidates:
            return None
        return max(candidates, key=lambda p: (len(os.path.commonpath([p, near])), -len(p)))


_JSONC_TOKENS = re.compile(r'("(?:\\.|[^"\\])*")|//[^\n]*|/\*.*?\*/', re.S)
_TRAILING_COMMA = re.compile(r",(\s*[}\]])")


def _read_jsonc(path: str) -> dict[str, object] | None:
    """A JSON object from a file that may have comments and trailing commas."""
    text = read_text(path, encoding="utf-8-sig")
    if text is None:
        return None
    text = _JSONC_TOKENS.sub(lambda m: m.group(1) or "", text)
    text = _TRAILING_COMMA.sub(r"\1", text)
    try:
        data = json.loads(text)
    except ValueError:
        log.debug("cannot parse %s", path)
        return None
    return data if isinstance(data, dict) else None
