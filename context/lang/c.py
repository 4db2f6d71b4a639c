"""C: definitions, ``#include`` and its resolution.

Resolution: ``#include "x.h"`` relative to the including file and its folders up to the
root, then ``include/`` and ``src/`` of the root, then any indexed file whose path ends
with it (``<x.h>`` skips the including file's folders). ``static`` functions are not
exported. A ``.h`` header whose first 8 KB use C++ is parsed as C++.

Retrieval (``CRetrieval``): a file sees everything its headers include, transitively
(the index keeps each file's resolved includes), and a header sees what the files that
include it saw (their definitions, ``static`` ones too, and their headers): a ``_inc.h``
template or a platform header is compiled in its includer's scope.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterable
from typing import Any

from tree_sitter import Node

from context.lang import FillSource, LanguageSpec, Resolver, Retrieval, RetrievalHost, words
from context.rules import Enclosing, RawImport, RuleContext, Rules
from context.types import CONTAINER_KINDS, FileSymbols, Import


def _grammar() -> Any:
    import tree_sitter_c

    return tree_sitter_c.language()


# Function names can hide behind pointer and reference declarators.
_C_FUNC_DECLARATOR = r"""[
    (function_declarator declarator: (_) @name)
    (pointer_declarator declarator: (function_declarator declarator: (_) @name))
    (pointer_declarator declarator: (pointer_declarator
      declarator: (function_declarator declarator: (_) @name)))
  ]"""

QUERY = rf"""
(function_definition declarator: {_C_FUNC_DECLARATOR} body: (_) @body) @def.function
(declaration declarator: {_C_FUNC_DECLARATOR}) @def.function
(struct_specifier name: (type_identifier) @name body: (field_declaration_list) @body) @def.struct
(union_specifier name: (type_identifier) @name body: (field_declaration_list) @body) @def.struct
(enum_specifier name: (type_identifier) @name body: (enumerator_list) @body) @def.enum
(type_definition declarator: (type_identifier) @name) @def.type
(preproc_def name: (identifier) @name) @def.constant
(preproc_function_def name: (identifier) @name) @def.function
(preproc_include) @import
(comment) @comment
"""

# Blocks scanned like the top level (shared with C++).
SCOPES_QUERY = r"""
(preproc_if) @scope
(preproc_ifdef) @scope
(preproc_else) @scope
(preproc_elif) @scope
(linkage_specification body: (declaration_list) @scope)
"""
QUERY += SCOPES_QUERY

KEYWORDS_TEXT = """auto break case char const continue default do double else enum extern float
for goto if inline int long register restrict return short signed sizeof static struct switch
typedef union unsigned void volatile while define include ifdef ifndef endif elif undef pragma
NULL"""

_STATIC_RE = re.compile(rb"\bstatic\b")
_INCLUDE_GUARD = re.compile(r"_(?:H|HPP|HH|INCLUDED)_*$")

# `.h` is shared by C and C++; these markers in a header's first 8 KB mean C++.
_CPP_HEADER_MARKERS = re.compile(
    rb"^\s*(?:class\s+\w+\s*[:{]|namespace\s+\w*\s*\{|template\s*<|public:|private:|"
    rb"protected:|using\s+namespace\b|#include\s*<(?:vector|string|memory|map|iostream)>)",
    re.MULTILINE,
)


def _refine(source: bytes) -> str:
    return "cpp" if _CPP_HEADER_MARKERS.search(source, 0, 8192) else "c"


class CRules(Rules):
    @classmethod
    def exported(
        cls,
        ctx: RuleContext,
        node: Node,
        name: str,
        name_node: Node,
        caps: dict[str, list[Node]],
        enclosing: Enclosing | None,
        outer: Node | None,
    ) -> bool:
        if enclosing is not None and enclosing[1] in CONTAINER_KINDS:
            return True
        return not _STATIC_RE.search(ctx.source, node.start_byte, name_node.start_byte)

    @classmethod
    def imports(cls, ctx: RuleContext, node: Node) -> Iterable[RawImport]:
        path = node.child_by_field_name("path")
        if path is None:
            return
        text = ctx.text(path)
        if path.type == "string_literal":
            text = text[1:-1]
        yield (text, (), "", node.start_point.row, (), "include")


class CResolver(Resolver):
    """``#include`` resolution, for C and C++ alike."""

    def resolve(self, from_path: str, imp: Import) -> list[str]:
        spec = imp.module
        system = spec.startswith("<")
        rel = spec.strip("<>").replace("/", os.sep)
        if not rel or os.path.isabs(rel):
            return []
        has = self.view.has_file
        root = self.view.root_of(from_path) or os.path.dirname(from_path)
        candidates: list[str] = []
        if not system:
            folder = os.path.dirname(from_path)
            while True:
                candidates.append(os.path.join(folder, rel))
                if folder == root or os.path.dirname(folder) == folder:
                    break
                folder = os.path.dirname(folder)
        candidates.extend(
            (
                os.path.join(root, "include", rel),
                os.path.join(root, "src", rel),
                os.path.join(root, rel),
            )
        )
        for candidate in candidates:
            candidate = os.path.normpath(candidate)
            if has(candidate):
                return [candidate]
        found = self.host.by_suffix(rel, from_path)
        return [found] if found else []


class CRetrieval(Retrieval):
    """The include graph around the file, for C and C++ alike; `#` starts a directive,
    not a comment."""

    hash_comments = False

    MAX_CLOSURE = 256  # headers reached through the file's headers, nearest first
    INCLUDER_DEPTH = 2  # files including this one, and the files including those
    MAX_INCLUDERS = 8
    MAX_SCANNED = 60  # files of a folder looked at for an `#include` of this one

    @classmethod
    def fill_worthy(cls, name: str) -> bool:
        return _INCLUDE_GUARD.search(name) is None  # `FOO_H_`: a guard, not an API

    @classmethod
    def fill_sources(cls, host: RetrievalHost, fs: FileSymbols) -> list[FillSource]:
        out: list[FillSource] = []
        direct = [t for imp in fs.imports for t in host.resolve(host.path, imp)]
        seen = {host.path, *direct}
        # What the preprocessor pastes in: every header the file's headers include, at
        # any depth.
        nested = cls._closure(host, direct, seen)
        if nested:
            out.append(FillSource("a header its headers include", tuple(nested)))
        includers: list[str] = []
        frontier = [host.path]
        for _ in range(cls.INCLUDER_DEPTH):
            level: list[str] = []
            for target in frontier:
                for other in cls._includers(host, target):
                    if other not in seen and len(includers) + len(level) < cls.MAX_INCLUDERS:
                        seen.add(other)
                        level.append(other)
            includers.extend(level)
            frontier = level
        if includers:
            out.append(FillSource("a file that includes it", tuple(includers), everything=True))
            # A header is compiled in its includers' scope: their own headers (all that
            # those include too floods a template's fill with the project's common
            # macros, ahead of its includer's helpers: brotli's `*_inc.h` lost two).
            theirs = cls._closure(host, includers, seen, depth=1)
            if theirs:
                out.append(FillSource("a header its includers include", tuple(theirs)))
        return out

    @classmethod
    def _closure(
        cls, host: RetrievalHost, files: list[str], seen: set[str], depth: int = 1 << 30
    ) -> list[str]:
        """What `files` include, transitively (`depth` levels), breadth first: nearest
        first, at most `MAX_CLOSURE`. The index keeps each file's resolved includes, so
        a walk is dictionary lookups."""
        out: list[str] = []
        frontier = files
        while frontier and len(out) < cls.MAX_CLOSURE and depth > 0:
            depth -= 1
            level: list[str] = []
            for path in frontier:
                for target in sorted(host.imports_of(path)):
                    if target not in seen and len(out) + len(level) < cls.MAX_CLOSURE:
                        seen.add(target)
                        level.append(target)
            out.extend(level)
            frontier = level
        return out

    @classmethod
    def _includers(cls, host: RetrievalHost, path: str) -> list[str]:
        """Files of `path`'s folder and of its parent that `#include` it."""
        base = os.path.basename(path)
        folder = os.path.dirname(path)
        out: list[str] = []
        for where in dict.fromkeys((folder, os.path.dirname(folder))):
            for other in host.files_in_dir(where)[: cls.MAX_SCANNED]:
                if other == path:
                    continue
                symbols = host.file(other)
                if symbols is None or symbols.language not in ("c", "cpp"):
                    continue
                for imp in symbols.imports:
                    spec = imp.module.strip("<>")
                    if (spec == base or spec.endswith("/" + base)) and path in host.resolve(
                        other, imp
                    ):
                        out.append(other)
                        break
        return out


SPECS = (
    LanguageSpec(
        "c",
        (".c", ".h"),
        _grammar,
        QUERY,
        words(KEYWORDS_TEXT),
        rules=CRules,
        resolver=CResolver,
        retrieval=CRetrieval,
        editor_ids=("c",),
        refine=_refine,
    ),
)
