"""Retrieval: what the code at the cursor needs from the rest of the workspace.

`gather_context` is one plain function: the index, the recent-activity tracker, the
similarity store, the document and the cursor in; a `PackedContext` out. It collects
candidate snippets from every source, scores them with explicit rules, and hands them
to `context.pack.pack`, which chooses within the budget and lays them out.

Sources and scores (higher wins when the budget is short; docs/context.md explains):

=====  ==================================================================  ==========
score  candidate                                                            tier
=====  ==================================================================  ==========
100    definition of a name imported by this file and used near the cursor  definition
 90    a base class of the enclosing class (outline)                        definition
 85    members of the enclosing class outside the windows                   current
 82    members of those base classes (signatures)                           definition
 80    definition of a name used near the cursor: in the cursor's Go/Java   definition
       package, through a Rust path, or found by name
 70    the first members of a class used near the cursor (not by its        definition
       import line only)
 64-69 definition of a name used elsewhere in this file, nearest use first  definition
 62    its other members; a name near the cursor not imported (Python, JS)  definition
 60    definition of a name imported by this file                           definition
 55    a definition of this file used near the cursor, outside the windows  current
 52    this file's import lines, outside the windows                        current
 50    a definition of this file that the cursor's function calls           current
 45    a recently edited region of another file                             recent
 40    a recently viewed region of another file                             recent
 30-34 fill: the package's and imported modules' other definitions, the     definition
       ones most used by the files of the folder first (packed last)
 <20   a window similar to the lines above the cursor (20 x Jaccard)        similar
=====  ==================================================================  ==========

Small bonuses (< 1) order candidates of one rule by closeness to the cursor. The
names "near the cursor" are the identifiers of the 20 lines above it and the 3 below,
without the word being typed (a half-typed name would find wrong definitions and
change the context on every keystroke).
"""

from __future__ import annotations

import logging
import os
import re
import threading
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field, replace
from typing import Protocol

from context.fill import NOT_REFERABLE, FileTopic, Popularity, fill_offers, folder_popularity
from context.lang import FillSource, Retrieval
from context.languages import language_for_path
from context.languages import spec as language_spec
from context.names import (
    FILE_SCAN_AFTER,
    FILE_SCAN_BEFORE,
    NEAR_AFTER,
    NEAR_BEFORE,
    is_comment,
    line_uses,
    names_in_file,
    names_near,
)
from context.pack import pack
from context.recent import RecentActivity
from context.similar import SimilarWindows
from context.snippets import (
    CLASS_KINDS,
    MAX_CLASS_LINES,
    definition_snippets,
    file_lines,
    make_snippet,
    with_source,
)
from context.tokens import TokenCounter, estimate_tokens
from context.types import (
    CALLABLE_KINDS,
    Definition,
    FileSymbols,
    Import,
    PackedContext,
    PromptFormat,
    Snippet,
)

log = logging.getLogger(__name__)

# Name maps by current file: (the ids of the symbols read, those symbols, the map).
_NameMaps = dict[str, tuple[tuple[int, ...], list[FileSymbols | None], dict[str, list[Definition]]]]
_PACKAGE_CACHE: _NameMaps = {}  # the package's names (`_Request.package_definitions`)
_PACKAGE_LOCK = threading.Lock()
_WILDCARD_CACHE: _NameMaps = {}  # those of `import a.b.*` (`wildcard_definitions`)


def _kept(
    cache: _NameMaps,
    path: str,
    symbols: Sequence[FileSymbols | None],
    build: Callable[[], dict[str, list[Definition]]],
) -> dict[str, list[Definition]]:
    """`build()`'s map for the file at `path`, kept in `cache` while the files it reads
    have the same symbols (the index replaces a file's symbols when it changes; the
    cache holds them, so their ids stay theirs); the 8 files last asked for are kept."""
    key = tuple(id(s) for s in symbols)
    with _PACKAGE_LOCK:
        cached = cache.get(path)
        if cached is not None and cached[0] == key:
            return cached[2]
    out = build()
    with _PACKAGE_LOCK:
        cache[path] = (key, list(symbols), out)
        while len(cache) > 8:
            cache.pop(next(iter(cache)))
    return out


class IndexLike(Protocol):
    """The part of `context.index.WorkspaceIndex` that retrieval uses."""

    def file(self, path: str) -> FileSymbols | None: ...
    def text(self, path: str) -> str | None: ...
    def definitions_named(self, name: str) -> list[Definition]: ...
    def resolve_import(self, from_path: str, imp: Import) -> list[str]: ...
    def root_of(self, path: str) -> str | None: ...


# Scores of the rules above.
IMPORTED_NEAR = 100.0
BASE_CLASS = 90.0
ENCLOSING_MEMBER = 85.0
BASE_MEMBER = 82.0
USED_NEAR = 80.0
NEAR_CLASS_MEMBER = 70.0
IMPORTED = 60.0
SAME_FILE_NEAR = 55.0
SAME_FILE_IMPORTS = 52.0
SAME_FILE_CALLEE = 50.0
RECENT_EDIT = 45.0
RECENT_VIEW = 40.0
USED_IN_FILE = 64.0
USED_NEAR_UNIMPORTED = 62.0  # found by name in Python or JS/TS, where names are imported
SAME_PACKAGE = 30.0  # fill: other definitions of the cursor's package / imported modules
MODULE_EXPORT = 30.0
SIMILAR = 20.0

MAX_MEMBERS = 40
NEAR_MEMBERS_FIRST = 8  # members of a class used near the cursor scored as high as it
MAX_DEFINITIONS_PER_NAME = 3  # a name defined in more places is too ambiguous to follow
MAX_NEIGHBOURS = 60  # sibling files read for what the package uses most
MAX_PACKAGE_FILES = 400  # files of a Go/Java package whose names are looked at
# Fill: definitions the file does not use yet, this many per 1K tokens of budget, at
# most `MAX_FILL` (beyond that, similar code is worth more than one more signature). A
# fill signature is one line, ~12 tokens: 32 of them are under 40 % of 1K. `MAX_FILL`
# also bounds the work at large budgets (each candidate is tried by the packing).
FILL_PER_1K = 32
MAX_FILL = 64
RECENT_CONTEXT = 3  # lines around a recent edit
MAX_RECENT_LINES = 60
SIMILAR_QUERY_LINES = 40

_LOOKUP_KINDS = frozenset(
    {"function", "method", "class", "interface", "struct", "enum", "type", "constant", "trait"}
)
_IDENT = re.compile(r"[A-Za-z_$][A-Za-z0-9_$]*")


def gather_context(
    index: IndexLike,
    recent: RecentActivity | None,
    similar: SimilarWindows | None,
    *,
    path: str,
    text: str,
    line: int,
    character: int,
    budget_tokens: int,
    count_tokens: TokenCounter = estimate_tokens,
    fmt: PromptFormat = "fim",
    definitions: bool = True,
    recent_edits: bool = True,
    similar_windows: bool = True,
    prefix_lines: int = 120,
    suffix_lines: int = 40,
) -> PackedContext:
    """Retrieve and pack the cross-file context for the cursor at (`line`, `character`).

    `text` is the current document's unsaved text; `line` and `character` are 0-based
    (character in code points). The current document's lines within `prefix_lines`
    above and `suffix_lines` below the cursor are left out: the prompt builder adds
    them. The result never exceeds `budget_tokens` as counted by `count_tokens`.
    """
    started = time.perf_counter()
    path = _normalise(path)
    candidates = collect_candidates(
        index,
        recent,
        similar,
        path=path,
        text=text,
        line=line,
        character=character,
        budget_tokens=budget_tokens,
        definitions=definitions,
        recent_edits=recent_edits,
        similar_windows=similar_windows,
        prefix_lines=prefix_lines,
        suffix_lines=suffix_lines,
    )
    roots = sorted(
        {r for r in (index.root_of(p) for p in {path, *(c.path for c in candidates)}) if r}
    )
    packed = pack(candidates, budget_tokens, count_tokens, fmt, roots)
    log.debug(
        "context for %s:%d: %d candidates, %d pieces, %d/%d tokens in %.1f ms",
        path,
        line + 1,
        len(candidates),
        len(packed.snippets),
        packed.tokens,
        budget_tokens,
        (time.perf_counter() - started) * 1000,
    )
    return packed


def collect_candidates(
    index: IndexLike,
    recent: RecentActivity | None,
    similar: SimilarWindows | None,
    *,
    path: str,
    text: str,
    line: int,
    character: int,
    budget_tokens: int = 16384,
    definitions: bool = True,
    recent_edits: bool = True,
    similar_windows: bool = True,
    prefix_lines: int = 120,
    suffix_lines: int = 40,
) -> list[Snippet]:
    """Every candidate snippet for the cursor, scored and with its reason (unpacked)."""
    path = _normalise(path)
    lines = text.split("\n")
    line = max(0, min(line, len(lines) - 1))
    state = _Request(
        index=index,
        path=path,
        lines=lines,
        line=line,
        character=character,
        window=(line - prefix_lines, line + suffix_lines),
        budget=budget_tokens,
        rules=_rules_for(index, path),
    )
    if definitions:
        state.add_definitions()
    if recent_edits and recent is not None:
        state.add_recent(recent)
    if similar_windows and similar is not None:
        state.add_similar(similar, budget_tokens)
    out = list(state.candidates.values())
    if recent is not None:
        # Definitions from files being edited change with them: pack them after the
        # stable ones so an edit there does not invalidate the whole prompt.
        edited = recent.edited_paths(exclude_path=path)
        out = [
            with_source(c, "recent") if c.source == "definition" and c.path in edited else c
            for c in out
        ]
    return out


# -- one request -----------------------------------------------------------------


@dataclass
class _Request:
    index: IndexLike
    path: str
    lines: list[str]
    line: int
    character: int
    window: tuple[int, int]
    budget: int = 16384
    # The current file's language's own rules (context/lang/*.py).
    rules: type[Retrieval] = Retrieval
    candidates: dict[tuple[str, int, int, str], Snippet] = field(default_factory=dict)
    _resolved: dict[tuple[str, Import], list[str]] = field(default_factory=dict)
    _lines: dict[str, list[str] | None] = field(default_factory=dict)

    # -- helpers --

    def resolve(self, from_path: str, imp: Import) -> list[str]:
        key = (from_path, imp)
        found = self._resolved.get(key)
        if found is None:
            try:
                found = list(self.index.resolve_import(from_path, imp))
            except Exception:  # a resolver bug must not cost the whole completion
                log.exception("resolve_import failed for %r in %s", imp.module, from_path)
                found = []
            self._resolved[key] = found
        return found

    def file(self, path: str) -> FileSymbols | None:
        return self.index.file(path)

    def is_comment(self, text: str) -> bool:
        return is_comment(text, self.rules.hash_comments)

    def imports_of(self, path: str) -> frozenset[str]:
        imports_of = getattr(self.index, "imports_of", None)
        if imports_of is not None:
            try:
                return frozenset(imports_of(path))
            except Exception:
                log.exception("imports_of failed for %s", path)
                return frozenset()
        fs = self.index.file(path)  # an index without the graph: resolve here
        if fs is None:
            return frozenset()
        return frozenset(t for imp in fs.imports for t in self.resolve(path, imp) if t != path)

    def files_in_dir(self, folder: str) -> list[str]:
        files_in_dir = getattr(self.index, "files_in_dir", None)
        if files_in_dir is None:
            return []
        try:
            return list(files_in_dir(folder))
        except Exception:
            log.exception("files_in_dir failed for %s", folder)
            return []

    def file_lines(self, path: str) -> list[str] | None:
        if path == self.path:
            return self.lines
        # Once per request: reading a file back checks it on disk each time.
        if path not in self._lines:
            self._lines[path] = file_lines(self.index.text, path)
        return self._lines[path]

    def offer(self, snippet: Snippet) -> None:
        """Keep the best-scored candidate for each span and tier."""
        key = (snippet.path, snippet.start_line, snippet.end_line, snippet.source)
        old = self.candidates.get(key)
        if old is None or snippet.score > old.score:
            self.candidates[key] = snippet

    def offer_definition(
        self,
        definition: Definition,
        score: float,
        reason: str,
        *,
        members_score: float | None = None,
    ) -> None:
        """Offer a definition; a large class also offers its member signatures."""
        lines = self.file_lines(definition.path)
        if lines is None:
            return
        source = "current" if definition.path == self.path else "definition"
        for snippet in definition_snippets(definition, lines, score, reason, source):
            if source == "current":
                clipped = self.clip(snippet)
                if clipped is not None:
                    self.offer(clipped)
            else:
                self.offer(snippet)
        large = definition.end_line - definition.start_line + 1 > MAX_CLASS_LINES
        if members_score is not None and large and definition.kind in CLASS_KINDS:
            fs = self.index.file(definition.path)
            if fs is not None:
                self.offer_members(definition, fs, lines, members_score, reason)

    def offer_signature(self, definition: Definition, score: float, reason: str) -> None:
        """A definition as its signature alone: the fill offers names the code may use
        next, and a JDK class's 30 lines of Javadoc would cost as much as ten more
        names (the bodies and docs come when the code names it)."""
        lines = self.file_lines(definition.path)
        if lines is None or definition.path == self.path:
            return
        end = min(definition.end_line, len(lines) - 1)
        sig_end = max(definition.start_line, min(definition.signature_end_line, end))
        snippet = make_snippet(
            definition.path, lines, definition.start_line, sig_end, score, reason, "definition"
        )
        if snippet is not None:
            self.offer(snippet)

    def offer_members(
        self,
        cls: Definition,
        fs: FileSymbols,
        lines: list[str],
        score: float,
        reason: str,
    ) -> None:
        source = "current" if cls.path == self.path else "definition"
        members = [
            d
            for d in fs.definitions
            if d.parent == cls.name and cls.start_line <= d.start_line <= cls.end_line
        ]
        # Public members first; the outline matters more than helpers.
        members.sort(key=lambda d: (d.name.startswith("_") and d.name != "__init__", d.start_line))
        for rank, member in enumerate(members[:MAX_MEMBERS]):
            for snippet in definition_snippets(
                member,
                lines,
                # A class used near the cursor: its first members beside it, the rest
                # after the names the file uses (40 signatures of one class would
                # otherwise take a small budget from every other definition).
                (
                    score
                    if rank < NEAR_MEMBERS_FIRST or score != NEAR_CLASS_MEMBER
                    else USED_IN_FILE - 2
                )
                - rank * 0.01,
                f"member of `{cls.name}` ({reason})",
                source,
                member=True,
            ):
                clipped = self.clip(snippet) if source == "current" else snippet
                if clipped is not None:
                    self.offer(clipped)

    def clip(self, snippet: Snippet) -> Snippet | None:
        """The part of a current-file snippet outside the prefix/suffix windows."""
        lo, hi = self.window
        if snippet.end_line < lo or snippet.start_line > hi:
            return snippet
        if snippet.start_line < lo:  # keep the part above the window (signature first)
            keep = lo - snippet.start_line
            text = "\n".join(snippet.text.split("\n")[:keep])
            return Snippet(
                snippet.path,
                snippet.start_line,
                lo - 1,
                text,
                snippet.reason,
                snippet.score,
                source=snippet.source,
            )
        return None

    # -- sources --

    def add_definitions(self) -> None:
        fs = self.index.file(self.path)
        near, chains = names_near(self.lines, self.line, self.character, self.rules.hash_comments)
        own: dict[str, list[Definition]] = {}
        if fs is not None:
            for d in fs.definitions:
                own.setdefault(d.name, []).append(d)
        imported: dict[str, tuple[Import, list[str], str]] = {}  # bound name -> import, files
        modules: dict[str, list[str]] = {}  # module binding -> files
        wildcard: list[str] = []
        if fs is not None:
            self.collect_imports(fs, imported, modules, wildcard)
        handled: set[str] = set()
        used, used_chains = names_in_file(
            self.lines, self.line, near, chains, self.rules.hash_comments
        )
        package = self.package_definitions(fs)
        # The names near the cursor outside import statements: an imported class named
        # near the cursor only by its import line gets no member outline (right below
        # the imports, each is as likely next as the others; 40 signatures of each
        # would take the budget from the names the code does use).
        in_code = self.names_in_code(fs, near) if fs is not None and fs.imports else near

        # Imported names: all of them, the ones used near the cursor first, then the
        # ones used elsewhere in the file (nearest use first).
        for rank, (name, (imp, files, original)) in enumerate(sorted(imported.items())):
            distance = near.get(name)
            found = self.find_in_files(original, files, depth=3)
            if not found:
                # `from pkg import module`: the name is a submodule, used as `module.x`.
                sub = self.rules.submodule(imp, original)
                if sub is not None:
                    subfiles = [f for f in self.resolve(self.path, sub) if f != self.path]
                    if subfiles:
                        modules.setdefault(name, subfiles)
                continue
            handled.add(name)
            if distance is not None:
                score = IMPORTED_NEAR + _closeness(distance)
                reason = f"definition of `{name}` imported from {imp.module}, used near the cursor"
            elif name in used:
                score = USED_IN_FILE + _far_closeness(used[name])
                reason = f"definition of `{name}` imported from {imp.module}, used in this file"
            else:
                score = IMPORTED - rank * 0.001
                reason = f"definition of `{name}` imported from {imp.module}"
            for d in found[:MAX_DEFINITIONS_PER_NAME]:
                members = NEAR_CLASS_MEMBER if name in in_code else None
                self.offer_definition(d, score, reason, members_score=members)

        # `module.name` chains near the cursor, through module imports.
        for (head, attr), distance in sorted(chains.items()):
            module_files = modules.get(head)
            if not module_files:
                continue
            for d in self.find_in_files(attr, module_files, depth=2)[:MAX_DEFINITIONS_PER_NAME]:
                reason = f"definition of `{head}.{attr}`, used near the cursor"
                self.offer_definition(
                    d, IMPORTED_NEAR + _closeness(distance), reason, members_score=NEAR_CLASS_MEMBER
                )
            handled.add(attr)
        # ... and elsewhere in the file: what this file already uses from a module is
        # what it most likely uses next (`click.option` after `click.command`).
        for (head, attr), distance in sorted(used_chains.items(), key=lambda kv: kv[1]):
            module_files = modules.get(head)
            if not module_files or (head, attr) in chains:
                continue
            for d in self.find_in_files(attr, module_files, depth=2)[:MAX_DEFINITIONS_PER_NAME]:
                self.offer_definition(
                    d,
                    USED_IN_FILE + _far_closeness(distance),
                    f"definition of `{head}.{attr}`, used in this file",
                )
            handled.add(attr)

        # The enclosing class: its members here, its bases wherever they are.
        enclosing_fn, enclosing_cls = self.enclosing(fs)
        if enclosing_cls is not None and fs is not None:
            # The class's own header when the window does not show it.
            self.offer_definition(
                enclosing_cls, ENCLOSING_MEMBER + 1.0, "the class around the cursor"
            )
            self.offer_members(
                enclosing_cls,
                fs,
                self.lines,
                ENCLOSING_MEMBER,
                "the class around the cursor",
            )
            self.add_bases(enclosing_cls, imported, own, depth=2, score=BASE_CLASS)

        # Names near the cursor defined in this file (outside the windows) or elsewhere.
        importing = fs is not None and self.rules.names_need_imports
        external = self.rules.external_names(fs) if fs is not None else frozenset()
        for name, distance in sorted(near.items(), key=lambda kv: (kv[1], kv[0])):
            if name in handled or name in external:
                continue
            if name in own:
                for d in own[name][:MAX_DEFINITIONS_PER_NAME]:
                    if enclosing_fn is not None and d == enclosing_fn:
                        continue
                    self.offer_definition(
                        d,
                        SAME_FILE_NEAR + _closeness(distance),
                        f"definition of `{name}` in this file, used near the cursor",
                    )
                continue
            found = package.get(name, [])[:MAX_DEFINITIONS_PER_NAME]
            if not found and wildcard:
                found = self.wildcard_definitions(wildcard).get(name, [])
            score = USED_NEAR
            if not found and not self.rules.bare_names_in_package:
                found = self.lookup(name)
                if importing:  # not imported: maybe a local, maybe an import to come
                    score = USED_NEAR_UNIMPORTED
            handled.add(name)
            for d in found:
                self.offer_definition(
                    d,
                    score + _closeness(distance),
                    f"definition of `{name}`, used near the cursor",
                    members_score=NEAR_CLASS_MEMBER,
                )

        # Names used elsewhere in this file, defined in its package or found by name
        # (where a name is not imported first: not in Python or JavaScript/TypeScript).
        by_name = not importing and not self.rules.bare_names_in_package
        for name, distance in sorted(used.items(), key=lambda kv: (kv[1], kv[0])):
            if name in handled or name in own or name in imported or name in external:
                continue
            found = package.get(name, [])[:MAX_DEFINITIONS_PER_NAME]
            if not found and by_name:
                found = self.lookup(name)
            handled.add(name)
            for d in found:
                self.offer_definition(
                    d,
                    USED_IN_FILE + _far_closeness(distance),
                    f"definition of `{name}`, used in this file",
                )

        # Paths in the code (Rust's `crate::util::say`, `super::Outcome`,
        # `other_crate::Type::new`): resolved like an import of their leading part.
        if fs is not None:
            self.add_code_paths(handled)

        # Fill: what the file does not use yet but its package and modules offer.
        if fs is not None:
            sources = [FillSource(head, tuple(files)) for head, files in sorted(modules.items())]
            # The language's own (headers an include reaches, ...) after those, in order.
            extra = self.rules.fill_sources(self, fs)
            sources.extend(replace(x, rank=i + 1) for i, x in enumerate(extra))
            self.add_fill(fs, package, sources, handled | set(own))

        # What the cursor's function calls, defined in this file.
        if enclosing_fn is not None:
            start = max(enclosing_fn.start_line, 0)
            end = min(enclosing_fn.end_line, len(self.lines) - 1)
            called = set(_IDENT.findall("\n".join(self.lines[start : end + 1])))
            for name in sorted(called):
                for d in own.get(name, ())[:MAX_DEFINITIONS_PER_NAME]:
                    if d == enclosing_fn or d.kind not in CALLABLE_KINDS | CLASS_KINDS:
                        continue
                    self.offer_definition(
                        d, SAME_FILE_CALLEE, f"`{name}`, called by `{enclosing_fn.name}`"
                    )

        # This file's imports, when the prefix window does not show them.
        if fs is not None and fs.imports:
            import_lines = sorted({imp.line for imp in fs.imports if imp.line < len(self.lines)})
            for start, end in _runs(import_lines):
                snippet = make_snippet(
                    self.path,
                    self.lines,
                    start,
                    end,
                    SAME_FILE_IMPORTS,
                    "imports of this file",
                    "current",
                )
                clipped = self.clip(snippet) if snippet is not None else None
                if clipped is not None:
                    self.offer(clipped)

    def names_in_code(self, fs: FileSymbols, near: dict[str, int]) -> dict[str, int]:
        """`near` without the names that only the file's import statements near the
        cursor write (a statement over lines, `use a::{\n b,\n c};`, included)."""
        lo = max(0, self.line - NEAR_BEFORE)
        hi = min(len(self.lines) - 1, self.line + NEAR_AFTER)
        window: list[str] | None = None
        for imp in fs.imports:
            if imp.line > hi:
                continue
            i, depth = imp.line, 0
            while i <= hi:
                text = self.lines[i]
                if i >= lo and i != self.line:
                    if window is None:
                        window = self.lines[lo : hi + 1]
                    window[i - lo] = ""
                depth += text.count("(") + text.count("{") - text.count(")") - text.count("}")
                if depth <= 0:
                    break
                i += 1
        if window is None:
            return near
        return names_near(window, self.line - lo, self.character, self.rules.hash_comments)[0]

    def collect_imports(
        self,
        fs: FileSymbols,
        imported: dict[str, tuple[Import, list[str], str]],
        modules: dict[str, list[str]],
        wildcard: list[str],
    ) -> None:
        for imp in fs.imports:
            files = [f for f in self.resolve(self.path, imp) if f != self.path]
            if not files:
                continue
            if len(imp.local_names) == len(imp.names):
                local = imp.local_names
            elif imp.alias and len(imp.names) == 1:
                local = (imp.alias,)
            else:
                local = imp.names
            pairs = [(n, b or n) for n, b in zip(imp.names, local, strict=True) if n and n != "*"]
            if "*" in imp.names:
                if imp.alias:  # `import * as ns from "./x"`
                    modules.setdefault(imp.alias, files)
                else:
                    wildcard.extend(files)
            if pairs:
                for name, bound in pairs:
                    imported.setdefault(bound, (imp, files, name))
            elif "*" not in imp.names:
                segments = [s for s in re.split(r"[./:\\\"']+", imp.module) if s]
                bound = (
                    imp.alias
                    or self.rules.module_name(self, imp, files)
                    or (segments[-1] if segments else "")
                )
                if not bound:
                    continue
                # `use crate::a::Item;` binds an item, `import os.path` a module.
                if self.find_in_files(bound, files, depth=1):
                    imported.setdefault(bound, (imp, files, bound))
                modules.setdefault(bound, files)
                if imp.module and not imp.alias:
                    modules.setdefault(imp.module, files)

    def find_in_files(self, name: str, files: Sequence[str], depth: int) -> list[Definition]:
        """Top-level definitions of `name` in `files`, following re-exports."""
        found: list[Definition] = []
        seen: set[tuple[str, str]] = set()
        frontier = [(f, name) for f in files]
        for _ in range(max(1, depth)):
            next_frontier: list[tuple[str, str]] = []
            for fpath, wanted in frontier:
                if (fpath, wanted) in seen:
                    continue
                seen.add((fpath, wanted))
                fs = self.index.file(fpath)
                if fs is None:
                    continue
                hits = [d for d in fs.definitions if d.name == wanted and not d.parent]
                if hits:
                    found.extend(hits)
                    continue
                for imp in fs.imports:  # a re-export: `from .x import name` in __init__
                    original = _original_name(imp, wanted)
                    if original is not None:
                        targets = self.resolve(fpath, imp)
                        next_frontier.extend((t, original) for t in targets if t != fpath)
            if found or not next_frontier:
                break
            frontier = next_frontier
        return found

    def lookup(self, name: str) -> list[Definition]:
        """Definitions of `name` anywhere, if few enough to be meaningful."""
        if len(name) < 3:
            return []
        try:
            found = [
                d
                for d in self.index.definitions_named(name)
                if d.kind in _LOOKUP_KINDS and not d.parent
            ]
        except Exception:
            log.exception("definitions_named(%r) failed", name)
            return []
        found = [d for d in found if d.path != self.path]
        # Places are files: a C macro defined in three `#if` branches of one header is
        # one place.
        if not found or len({d.path for d in found}) > MAX_DEFINITIONS_PER_NAME:
            return []
        # Nearest in the tree first: same package before far away.
        return sorted(
            found, key=lambda d: (-_common_prefix(d.path, self.path), d.path, d.start_line)
        )

    def add_bases(
        self,
        cls: Definition,
        imported: dict[str, tuple[Import, list[str], str]],
        own: dict[str, list[Definition]],
        depth: int,
        score: float,
    ) -> None:
        for base in cls.bases:
            name = _base_name(base)
            if not name or name == cls.name:
                continue
            found: list[Definition] = []
            if name in imported:
                _, files, original = imported[name]
                found = self.find_in_files(original, files, depth=3)
            if not found and name in own:
                found = [d for d in own[name] if d.kind in CLASS_KINDS]
            if not found:
                found = self.lookup(name)
            for d in found[:1]:
                if d.kind not in CLASS_KINDS:
                    continue
                reason = f"base class `{name}` of `{cls.name}`"
                self.offer_definition(d, score, reason, members_score=BASE_MEMBER)
                if depth > 1 and d.path != self.path:
                    # Bases of bases resolve from their own file.
                    fs = self.index.file(d.path)
                    sub_imported: dict[str, tuple[Import, list[str], str]] = {}
                    sub_own: dict[str, list[Definition]] = {}
                    if fs is not None:
                        for other in fs.definitions:
                            sub_own.setdefault(other.name, []).append(other)
                        for imp in fs.imports:
                            for n in imp.local_names or imp.names:
                                original = _original_name(imp, n) or n
                                files = self.resolve(d.path, imp)
                                sub_imported.setdefault(n, (imp, files, original))
                    self.add_bases(d, sub_imported, sub_own, depth - 1, score - 5.0)

    def enclosing(self, fs: FileSymbols | None) -> tuple[Definition | None, Definition | None]:
        """The innermost function and class around the cursor line."""
        fn: Definition | None = None
        cls: Definition | None = None
        if fs is None:
            return None, None
        for d in fs.definitions:
            if not d.start_line <= self.line <= d.end_line:
                continue
            if d.kind in CALLABLE_KINDS and (fn is None or d.start_line >= fn.start_line):
                fn = d
            elif d.kind in CLASS_KINDS and (cls is None or d.start_line >= cls.start_line):
                cls = d
        return fn, cls

    def add_code_paths(self, handled: set[str]) -> None:
        """Definitions named by qualified paths in the code around the cursor
        (`Retrieval.code_paths`; near: as a name used near it; farther: as a name used
        in the file)."""
        code_paths = self.rules.code_paths
        if code_paths is Retrieval.code_paths:
            return
        lo = max(0, self.line - FILE_SCAN_BEFORE)
        hi = min(len(self.lines) - 1, self.line + FILE_SCAN_AFTER)
        paths: dict[tuple[str, ...], int] = {}
        for i in range(lo, hi + 1):
            text = self.lines[i]
            if line_uses(text, self.rules.hash_comments) is None:
                continue  # a comment, or minified code (remembered per line)
            distance = abs(self.line - i)
            for segments in code_paths(text):
                path = tuple(segments)
                if path not in paths or distance < paths[path]:
                    paths[path] = distance
        for path, distance in sorted(paths.items(), key=lambda kv: (kv[1], "::".join(kv[0]))):
            parts = list(path)
            # `a::b::Type::new`: the longest leading part that is a module wins.
            for k in range(len(parts) - 1, 0, -1):
                name = parts[k]
                if name in handled and k == len(parts) - 1:
                    break
                module = "::".join(parts[:k])
                files = [f for f in self.resolve(self.path, self.rules.path_import(parts[:k])) if f]
                found = self.find_in_files(name, files, depth=2) if files else []
                if not found:
                    continue
                near = distance <= NEAR_BEFORE
                score = (
                    USED_NEAR + _closeness(distance)
                    if near
                    else USED_IN_FILE + _far_closeness(distance)
                )
                where = "near the cursor" if near else "in this file"
                for d in found[:MAX_DEFINITIONS_PER_NAME]:
                    self.offer_definition(
                        d,
                        score,
                        f"definition of `{module}::{name}`, used {where}",
                        members_score=NEAR_CLASS_MEMBER if near else None,
                    )
                handled.add(name)
                break

    def neighbours(self, language: str, limit: int = MAX_NEIGHBOURS) -> list[str]:
        """Other files of the current file's folder in the same language (at most
        `limit`)."""
        files_in_dir = getattr(self.index, "files_in_dir", None)
        if files_in_dir is None:
            return []
        try:
            files = files_in_dir(os.path.dirname(self.path))
        except Exception:
            log.exception("files_in_dir failed for %s", self.path)
            return []
        ext = os.path.splitext(self.path)[1]
        return [f for f in files if f != self.path and f.endswith(ext)][:limit]

    def package_definitions(self, fs: FileSymbols | None) -> dict[str, list[Definition]]:
        """Top-level definitions of the other files of the cursor's package, by name:
        where a folder is a package and its names need no import (Go, Java); elsewhere
        the names the language puts in scope without an import (Rust's macros)."""
        if fs is None:
            return {}
        if not self.rules.package_folder:
            return self.rules.names_in_scope(self, fs)
        members: list[FileSymbols] = []
        for path in self.neighbours(fs.language, MAX_PACKAGE_FILES):
            if not self.rules.in_package(self.path, path):
                continue  # (Go: test files are not part of the package the code builds)
            other = self.index.file(path)
            if other is not None:
                members.append(other)
        # The same files' symbols give the same map: kept from one keystroke to the next
        # (a package of 200 files is 10K definitions).
        return _kept(_PACKAGE_CACHE, self.path, members, lambda: self._package_map(members))

    def _package_map(self, members: list[FileSymbols]) -> dict[str, list[Definition]]:
        out: dict[str, list[Definition]] = {}
        for other in members:
            for d in other.definitions:
                if not d.parent and d.kind not in NOT_REFERABLE:
                    out.setdefault(d.name, []).append(d)
        view = self.rules.package_view
        if view is not Retrieval.package_view:
            for name, found in list(out.items()):
                usable = view(self.path, found)
                if usable:
                    out[name] = usable
                else:
                    del out[name]
        return out

    def wildcard_definitions(self, files: list[str]) -> dict[str, list[Definition]]:
        """Top-level definitions of the files imported whole with `*` (Java's `import
        a.b.*`, Python's `from x import *`) by name, each name from the first file that
        defines it. Kept while those files' symbols are: searching javac's packages file
        by file for each name near the cursor took half of a request."""
        symbols = [self.index.file(p) for p in files]

        def build() -> dict[str, list[Definition]]:
            out: dict[str, list[Definition]] = {}
            for fs in symbols:
                if fs is None:
                    continue
                theirs: dict[str, list[Definition]] = {}
                for d in fs.definitions:
                    if not d.parent and d.name not in out:
                        theirs.setdefault(d.name, []).append(d)
                out.update(theirs)
            return out

        return _kept(_WILDCARD_CACHE, self.path, symbols, build)

    def popularity(self, fs: FileSymbols) -> Popularity:
        """How many files of the folder (this one counted twice) use each name: what a
        file's neighbours use is what it likely uses next."""
        others = [o for o in map(self.index.file, self.neighbours(fs.language)) if o is not None]
        return folder_popularity(self.path, others, fs.references)

    def add_fill(
        self,
        fs: FileSymbols,
        package: dict[str, list[Definition]],
        sources: list[FillSource],
        taken: set[str],
    ) -> None:
        """Definitions the code at the cursor may use next though nothing names them yet:
        the package's own (Go, Java) and the names of modules imported whole (a Python
        package, a Go package, a C header). Ranked by how many neighbouring files use
        them; packed only after everything else but similar code (context/pack.py)."""
        limit = min(MAX_FILL, max(8, FILL_PER_1K * self.budget // 1024))
        popular = self.popularity(fs)
        about = FileTopic(self.path)
        offers = fill_offers(self.index.file, self.path, package, sources, taken, popular, about)
        top = max((o[0] for o in offers), default=0) or 1
        chosen: set[str] = set()
        for count, _, _, name, where, target in offers:
            if len(chosen) >= limit:
                break
            if name in chosen:
                continue
            if isinstance(target, tuple):  # a re-export: resolved only now it is chosen
                where_from, imp, original = target
                files = [f for f in self.resolve(where_from, imp) if f != where_from]
                found = self.find_in_files(original, files, depth=2)
                if not found:
                    continue
                target = found[0]
            chosen.add(name)
            base = SAME_PACKAGE if where == "its package" else MODULE_EXPORT
            if about.covers(name, target):
                base += 2.0  # packed in the order chosen: by score
            reason = (
                f"`{name}`, from {where}, used by files nearby"
                if count
                else f"`{name}`, from {where}"
            )
            self.offer_signature(target, base + 2.0 * count / top - len(chosen) * 1e-4, reason)

    def add_recent(self, recent: RecentActivity) -> None:
        for rank, region in enumerate(recent.regions(exclude_path=self.path, limit=12)):
            lines = self.file_lines(region.path)
            if lines is None:
                continue
            pad = RECENT_CONTEXT if region.kind == "edit" else 0
            start = max(0, region.start_line - pad)
            end = min(len(lines) - 1, region.end_line + pad, start + MAX_RECENT_LINES - 1)
            base = RECENT_EDIT if region.kind == "edit" else RECENT_VIEW
            reason = "recently edited" if region.kind == "edit" else "recently viewed"
            snippet = make_snippet(
                region.path, lines, start, end, base - rank * 0.1, reason, "recent"
            )
            if snippet is not None:
                self.offer(snippet)

    def add_similar(self, similar: SimilarWindows, budget_tokens: int) -> None:
        # Completed lines only: the query stays the same while a line is typed.
        lo = max(0, self.line - SIMILAR_QUERY_LINES)
        query = "\n".join(self.lines[lo : self.line])
        if not query.strip():
            return
        # Enough windows to fill a long budget: at 64K tokens, about a hundred.
        k = max(2, min(128, budget_tokens // 600))
        for hit in similar.query(query, k=k, exclude_path=self.path):
            lines = self.file_lines(hit.path)
            if lines is None:
                continue
            end = min(hit.end_line, len(lines) - 1)
            snippet = make_snippet(
                hit.path,
                lines,
                hit.start_line,
                end,
                SIMILAR * hit.score,
                f"similar to the code above the cursor (Jaccard {hit.score:.2f})",
                "similar",
            )
            if snippet is not None:
                self.offer(snippet)


# -- small helpers ---------------------------------------------------------------


def _rules_for(index: IndexLike, path: str) -> type[Retrieval]:
    """The retrieval rules of the language of the file at `path`."""
    try:
        fs = index.file(path)
    except Exception:
        fs = None
    language = fs.language if fs is not None else language_for_path(path)
    return language_spec(language or "").retrieval


def _closeness(distance: int) -> float:
    return max(0, 30 - distance) * 0.01


def _far_closeness(distance: int) -> float:
    """A bonus in [0, 5) for a use `distance` lines from the cursor, nearer higher."""
    return 5.0 * FILE_SCAN_BEFORE / (FILE_SCAN_BEFORE + 4 * distance)


def _original_name(imp: Import, local: str) -> str | None:
    """The name `imp` imports under the local name `local` (None: it does not)."""
    if len(imp.local_names) == len(imp.names) and imp.local_names:
        for name, bound in zip(imp.names, imp.local_names, strict=True):
            if bound == local and name != "*":
                return name
    elif local in imp.names:
        return local
    elif imp.alias == local and len(imp.names) == 1 and imp.names[0] != "*":
        return imp.names[0]
    if "*" in imp.names and not imp.alias:
        return local
    return None


def _base_name(base: str) -> str:
    """`pkg.Base[T]`, `Base<T>`, `metaclass=X` -> the class name to look up."""
    if "=" in base:
        return ""
    base = re.split(r"[\[<(]", base, maxsplit=1)[0].strip()
    parts = [p for p in re.split(r"\.|::", base) if p]
    return parts[-1] if parts and _IDENT.fullmatch(parts[-1]) else ""


def _runs(numbers: Iterable[int]) -> list[tuple[int, int]]:
    runs: list[tuple[int, int]] = []
    for n in numbers:
        if runs and n <= runs[-1][1] + 2:  # one blank line between imports is one run
            runs[-1] = (runs[-1][0], n)
        else:
            runs.append((n, n))
    return runs


def _common_prefix(a: str, b: str) -> int:
    return len(os.path.commonpath([a, b])) if os.path.isabs(a) == os.path.isabs(b) else 0


def _normalise(path: str) -> str:
    # The index keys files by realpath (documents that are no file too: an untitled
    # buffer's or a notebook cell's URI); a symlinked workspace must still match.
    return os.path.realpath(path)
