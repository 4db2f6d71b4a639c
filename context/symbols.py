"""Extract definitions, imports and referenced names from one file with tree-sitter.

One query per language (its file in ``context/lang/``) finds definitions, imports and
comments in a single pass; the language's ``Rules`` (``context.rules``) then work out what
a query cannot say on its own: the enclosing class (by span containment, so no parent
walks), the doc comment above a definition, base classes and whether a name is exported.

The query is run with a small maximum start depth on the file, then on the bodies of
the classes (and other containers) it found and on ``@scope`` blocks: walking every
node of every function body costs as much as parsing, and nothing in there is a
definition. Captures:

- ``@def.<kind>`` the definition node (kind is a ``DefinitionKind``); ``@name`` its name;
  ``@body`` the body (the signature ends on the body's first line); ``@sig`` a node whose
  last line ends the signature (Python's ``:``); ``@heritage`` nodes holding base classes;
  ``@parent`` an explicit owner (Go receiver, Lua table, C++ ``A::m``); ``@qname`` a
  qualified C++ name; ``@doc`` a docstring; ``@vis`` / ``@mods`` / ``@value`` / ``@decl``
  details read by the language's rules.
- ``@outer`` + ``@decorated``: a wrapper (decorators, ``export``, ``template<>``) whose
  first line is where a leading comment must end.
- ``@scope`` a block to scan like the top level (``if``/``try`` at module level,
  ``#ifdef``, ``extern "C"``, TypeScript ``declare``).
- ``@import`` an import statement, ``@comment`` a comment, ``@attr`` a Rust attribute
  (skipped when looking for the doc comment above an item).
- ``@expand`` the ``{ ... }`` body of a macro invoked where items go (Rust's
  ``cfg_rt! { pub mod runtime; }``): what it holds is parsed as items of the file,
  in place (a second parse restricted to those bodies), as the compiler sees them
  once the macro is expanded.

Extraction returns compact tuples (``RawSymbols``) rather than dataclasses: the index
persists them with ``marshal`` and builds ``FileSymbols`` only for the files someone
asks about, which keeps a warm start and the parse workers cheap.
"""

from __future__ import annotations

import functools
import inspect
import marshal
import re
from typing import Any

from tree_sitter import Node, Point, QueryCursor, Range, Tree

from context.languages import (
    LANGUAGES,
    TEXT_SPEC,
    LanguageSpec,
    has_grammar,
    parser,
    query,
    refine_language,
)
from context.rules import (
    MAX_DOC_CHARS,
    RAW_DOC_CHARS,
    Enclosing,
    RawDef,
    RawImport,
    RuleContext,
)
from context.skeleton import consistent, included_ranges, skipped_spans
from context.types import CALLABLE_KINDS, CONTAINER_KINDS, Definition, FileSymbols, Import

# Bumped whenever the extracted data changes, so persisted indexes are rebuilt.
EXTRACTOR_VERSION = 8

# definitions, imports, distinct identifier-shaped words ('\n'-joined bytes, maybe numbers)
RawSymbols = tuple[tuple[RawDef, ...], tuple[RawImport, ...], bytes]

EMPTY: RawSymbols = ((), (), b"")

SCAN_DEPTH = 2

_PY_STRING_PREFIX = re.compile(r"^[rRuUbBfF]{0,2}('''|\"\"\"|'|\")")


def parse(source: bytes, language: str, old_tree: Tree | None = None) -> Tree:
    """Parse ``source`` (reusing ``old_tree`` after ``Tree.edit`` for an incremental parse)."""
    p = parser(language)
    return p.parse(source, old_tree) if old_tree is not None else p.parse(source)


def extract_source(
    source: bytes,
    language: str,
    references: bool = True,
) -> tuple[str, RawSymbols]:
    """Parse and extract one file; returns the (possibly refined) language and its symbols
    (none for a language read as text)."""
    if not has_grammar(language):
        return language, ((), (), _references(source, TEXT_SPEC) if references else b"")
    language = refine_language(language, source)
    if LANGUAGES[language].skeleton_parse:
        tree = parse_skeleton(source)
    else:
        tree = parse(source, language)
    return language, extract(tree, source, language, references)


def parse_skeleton(source: bytes) -> Tree:
    """Parse Python ``source`` for ``extract`` only: the middles of function bodies, which
    cannot change what it finds, are skipped (``context.skeleton``). The tree is not
    fit for anything else (an editor's incremental parse, references in bodies). A file
    whose cut parse shows a syntax error, or cuts that ``consistent`` finds were not
    between whole statements, is parsed whole: a cut the lexical pass got wrong costs
    time, never contents."""
    try:
        spans = skipped_spans(source)
    except RecursionError:  # (bounded, but never let the pass cost the file)
        spans = []
    if not spans:
        return parse(source, "python")
    p = parser("python")
    p.included_ranges = included_ranges(source, spans)
    try:
        tree = p.parse(source)
    finally:
        p.included_ranges = []
    if tree.root_node.has_error or not consistent(tree, source, spans):
        return parse(source, "python")
    return tree


def extract(
    tree: Tree, source: bytes, language: str, references: bool = True, _expanded: int = 0
) -> RawSymbols:
    """Definitions, imports and (unless ``references`` is false) referenced identifiers
    of a parsed file. The index leaves references out when it indexes a workspace and
    finds them when someone reads the file (``references_of``): few files are read."""
    spec = LANGUAGES[language]
    if tree.root_node.has_error and _flooded_with_errors(tree.root_node):
        # tree-sitter's query cursor takes time quadratic in the size of a huge ERROR node
        # (minutes for a 1 MB file of unclosed brackets): such a file yields no symbols.
        return (), (), _references(source, spec) if references else b""
    cursor = QueryCursor(query(language))
    # Patterns start at most this deep below the scanned node: enough for wrappers such as
    # decorators or `export`, never into function bodies (see context.languages).
    cursor.set_max_start_depth(SCAN_DEPTH)
    defs: dict[tuple[int, int, int], tuple[Node, str, Node, dict[str, list[Node]]]] = {}
    outers: dict[int, Node] = {}  # wrapped node start byte -> wrapper (decorators, export ...)
    import_nodes: dict[int, Node] = {}
    comment_nodes: list[Node] = []
    attr_nodes: list[Node] = []
    expand_nodes: list[Node] = []
    pending = [tree.root_node]
    scanned: set[tuple[int, int]] = set()
    roles = _ROLES.setdefault(language, {})
    while pending:
        for pattern, caps in cursor.matches(pending.pop()):
            role = roles.get(pattern)
            if role is None:
                role = roles[pattern] = _role_of(caps)
            what, kind, capture = role
            if what == "def":
                node = caps[capture][0]
                names = caps.get("name")
                if not names:
                    continue
                name_node = names[0]
                key = (node.start_byte, -node.end_byte, name_node.start_byte)
                if key in defs:
                    continue
                defs[key] = (node, kind, name_node, caps)
                if kind in _SCANNED_KINDS:
                    body = caps.get("body")
                    if body:
                        span = (body[0].start_byte, body[0].end_byte)
                        if span not in scanned:
                            scanned.add(span)
                            pending.append(body[0])
            elif what == "comment":
                comment_nodes.append(caps["comment"][0])
            elif what == "import":
                node = caps["import"][0]
                import_nodes[node.start_byte] = node
            elif what == "outer":
                outers[caps["decorated"][0].start_byte] = caps["outer"][0]
            elif what == "scope":
                node = caps["scope"][0]
                span = (node.start_byte, node.end_byte)
                if span not in scanned:
                    scanned.add(span)
                    pending.append(node)
            elif what == "attr":
                attr_nodes.append(caps["attr"][0])
            elif what == "expand":
                expand_nodes.append(caps["expand"][0])
    if spec.import_hints:
        _hinted_imports(tree, source, spec, import_nodes)
    rules = spec.rules
    ctx = RuleContext(source, language, comment_nodes, attr_nodes, outers)
    out: list[RawDef] = []
    # Sorted by start, then widest first: a container is seen before what it contains.
    stack: list[Enclosing] = []
    definition = rules.definition
    for key, (node, kind, name_node, caps) in sorted(defs.items()):
        start, end = key[0], -key[1]
        while stack and stack[-1][0] <= start:
            stack.pop()
        enclosing = stack[-1] if stack else None
        if enclosing is not None and (enclosing[3] or enclosing[1] in CALLABLE_KINDS):
            stack.append((end, kind, "", True, ()))  # local to a function: not a definition
            continue
        record = definition(ctx, node, kind, name_node, caps, enclosing)
        if record is None:
            stack.append((end, kind, "", True, ()))
            continue
        out.append(record)
        stack.append((end, record[1], record[0], False, record[7]))
    imports: list[RawImport] = []
    for start_byte in sorted(import_nodes):
        imports.extend(rules.imports(ctx, import_nodes[start_byte]))
    if expand_nodes and _expanded < MAX_EXPANSIONS:
        inner_defs, inner_imports = _expand(expand_nodes, source, language, out, _expanded)
        out.extend(inner_defs)
        out.sort(key=lambda d: (d[2], -d[3]))
        imports.extend(inner_imports)
        imports.sort(key=lambda i: i[3])
    return tuple(out), tuple(imports), _references(source, spec) if references else b""


# Macro bodies inside macro bodies are expanded this many levels deep.
MAX_EXPANSIONS = 2
# Words that show a macro's body holds items (not an expression or a DSL).
_ITEM_WORDS = re.compile(rb"\b(?:fn|struct|enum|trait|mod|use|impl|type|const|static|union)\s")


def _expand(
    nodes: list[Node], source: bytes, language: str, outside: list[RawDef], level: int
) -> tuple[list[RawDef], list[RawImport]]:
    """Definitions and imports in the ``{ ... }`` bodies of item macros, parsed in place
    (one parse of the file restricted to those bodies: lines stay the file's). A body
    inside a class-like container gives members of it, as written there."""
    ranges: list[Range] = []
    last = -1
    for node in sorted(nodes, key=lambda n: n.start_byte):
        start, end = node.start_byte, node.end_byte
        if start < last or source[start : start + 1] != b"{" or end - start < 3:
            continue
        if not _ITEM_WORDS.search(source, start + 1, end - 1):
            continue
        row, column = node.start_point
        end_row, end_column = node.end_point
        ranges.append(
            Range(
                Point(row, column + 1), Point(end_row, max(0, end_column - 1)), start + 1, end - 1
            )
        )
        last = end
    if not ranges:
        return [], []
    p = parser(language)
    p.included_ranges = ranges
    try:
        tree = p.parse(source)
    finally:
        p.included_ranges = []
    defs, imports, _ = extract(tree, source, language, references=False, _expanded=level + 1)
    containers = [d for d in outside if d[1] in CONTAINER_KINDS]
    out: list[RawDef] = []
    for d in defs:
        owner = None
        if not d[6]:
            for c in containers:  # the innermost container around it
                if c[2] < d[2] and d[3] <= c[3] and (owner is None or c[2] >= owner[2]):
                    owner = c
        if owner is not None:
            kind = "method" if d[1] == "function" else d[1]
            d = (d[0], kind, d[2], d[3], d[4], d[5], owner[0], d[7], d[8])
        out.append(d)
    return out, list(imports)


# An ERROR node with more children than this at the top of a tree is not queried.
MAX_ERROR_CHILDREN = 10_000


def _flooded_with_errors(root: Node) -> bool:
    """Whether the top of the tree is an ERROR node with a flood of children (what a long
    run of unclosed brackets parses to)."""
    if root.type == "ERROR":
        return root.child_count > MAX_ERROR_CHILDREN
    if root.child_count > MAX_ERROR_CHILDREN:
        return False  # a big file of statements: its errors are local
    return any(c.type == "ERROR" and c.child_count > MAX_ERROR_CHILDREN for c in root.children)


# Query pattern index -> (role, definition kind, capture name), per language.
_ROLES: dict[str, dict[int, tuple[str, str, str]]] = {}
# Kinds whose bodies are scanned for definitions of their own (members, nested types).
_SCANNED_KINDS = CONTAINER_KINDS | {"module"}


def _role_of(caps: dict[str, list[Node]]) -> tuple[str, str, str]:
    """What a query pattern finds, from its captures (the role captures are never optional)."""
    for role in ("import", "comment", "outer", "scope", "attr", "expand"):
        if role in caps:
            return role, "", role
    for cap in caps:
        if cap.startswith("def."):
            return "def", cap[4:], cap
    return "none", "", ""


def _hinted_imports(tree: Tree, source: bytes, spec: LanguageSpec, found: dict[int, Node]) -> None:
    """Imports below the scanned levels (function-local imports, require() calls).

    A literal search finds the candidates and the tree confirms them, which costs a few
    node lookups per import instead of a walk over every function body.
    """
    root = tree.root_node
    indented_only = spec.hint_indented_only
    import_types = spec.import_node_types
    find = source.find
    for word in spec.import_hints:
        size = len(word)
        at = find(word)
        while at >= 0:
            if indented_only:
                line_start = source.rfind(b"\n", 0, at) + 1
                # Top-level statements were found by the scan.
                if source[line_start : line_start + 1] not in (b" ", b"\t"):
                    at = find(word, at + size)
                    continue
            node: Node | None = root.descendant_for_byte_range(at, at + size)
            for _ in range(3):
                if node is None:
                    break
                if node.type in import_types:
                    if node.start_byte not in found:
                        found[node.start_byte] = node
                    break
                node = node.parent
            at = find(word, at + size)


def _references(source: bytes, spec: LanguageSpec) -> bytes:
    """The distinct identifier-shaped words of the file, joined by newlines.

    Words rather than an identifier query: a query walks every node of the file and
    costs about as much as parsing it, for a set that serves ranking. Joined bytes
    rather than a set: marshalling one string is ten times cheaper. Numbers are
    dropped when the words are decoded (``decode_references``).
    """
    return b"\n".join(set(source.translate(spec.word_table).split()) - spec.keyword_bytes)


def references_of(source: bytes, language: str) -> frozenset[str]:
    """The identifiers used in a file (what ``FileSymbols.references`` holds)."""
    return decode_references(_references(source, LANGUAGES.get(language, TEXT_SPEC)))


def to_file_symbols(
    path: str,
    language: str,
    raw: RawSymbols,
    references: frozenset[str] | None = None,
) -> FileSymbols:
    """Build the shared dataclasses from extracted tuples (``references`` replaces the
    extracted ones, for symbols extracted without them)."""
    defs, imports, refs = raw
    return FileSymbols(
        path=path,
        language=language,
        definitions=tuple(
            Definition(d[0], d[1], path, d[2], d[3], d[4], clean_doc(d[5]), d[6], d[7], d[8])  # type: ignore[arg-type]
            for d in defs
        ),
        imports=tuple(Import(i[0], i[1], i[2], i[3], i[4], i[5]) for i in imports),
        references=decode_references(refs) if references is None else references,
    )


def decode_references(words: bytes) -> frozenset[str]:
    """The identifier names among the extracted words."""
    if not words:
        return frozenset()
    text = words.decode("utf-8", "replace")
    return frozenset(w for w in text.split("\n") if not w[:1].isdigit())


def file_symbols(path: str, source: bytes, language: str) -> FileSymbols:
    """Parse, extract and build the ``FileSymbols`` of one file in one call."""
    language, raw = extract_source(source, language)
    return to_file_symbols(path, language, raw)


def encode(raw: RawSymbols) -> bytes:
    """Serialise extracted symbols compactly (marshal: fast, no third-party format)."""
    return marshal.dumps(raw, 4)


def decode(blob: bytes) -> RawSymbols:
    """Inverse of ``encode``."""
    value: RawSymbols = marshal.loads(blob)
    return value


def definition_names(raw: RawSymbols) -> tuple[str, ...]:
    """The distinct definition names of a file, for the name -> files map."""
    return tuple(dict.fromkeys(d[0] for d in raw[0]))


# A comment marker at the start of each line (or a block comment's leading `*`), and the
# closing marker at the end of a line.
_COMMENT_OPEN = re.compile(r"(?m)^[ \t]*(?:/\*[*!]?|//[/!]?|--(?:\[=*\[|-)?|#+|\*(?!/))?[ \t]?")
_COMMENT_CLOSE = re.compile(r"(?m)[ \t]*(?:\*+/|\]=*\])[ \t]*$")


@functools.lru_cache(maxsize=8192)
def clean_doc(raw: str) -> str:
    """A docstring or doc comment as extracted, without quotes or comment markers.

    Extraction stores docs raw (cut to twice ``MAX_DOC_CHARS``) and they are cleaned
    only for the definitions someone reads: cleaning every doc of a repository costs
    more than finding them.
    """
    if not raw:
        return ""
    if _PY_STRING_PREFIX.match(raw):
        return _python_docstring(raw)
    text = _COMMENT_CLOSE.sub("", _COMMENT_OPEN.sub("", raw))
    return text.strip()[:MAX_DOC_CHARS]


def _python_docstring(text: str) -> str:
    m = _PY_STRING_PREFIX.match(text)
    if m:
        quote = m.group(1)
        text = text[m.end() :]
        if text.endswith(quote):
            text = text[: -len(quote)]
    return inspect.cleandoc(text[:RAW_DOC_CHARS])[:MAX_DOC_CHARS]


def describe(raw: RawSymbols) -> dict[str, Any]:
    """A JSON-friendly view of extracted symbols (debugging and the index command)."""
    defs, imports, refs = raw
    return {
        "definitions": [
            dict(
                zip(
                    (
                        "name",
                        "kind",
                        "start_line",
                        "end_line",
                        "signature_end_line",
                        "doc",
                        "parent",
                        "bases",
                        "exported",
                    ),
                    (*d[:5], clean_doc(d[5]), *d[6:]),
                    strict=True,
                )
            )
            for d in defs
        ],
        "imports": [
            dict(zip(("module", "names", "alias", "line", "local_names", "kind"), i, strict=True))
            for i in imports
        ],
        "references": sorted(decode_references(refs)),
    }
