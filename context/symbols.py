"""Extract definitions, imports and referenced names from one file with tree-sitter.

One query per language (``context.languages``) finds definitions, imports and comments
in a single pass; small per-language rules then work out what a query cannot say on its
own: the enclosing class (by span containment, so no parent walks), the doc comment
above a definition, base classes and whether a name is exported.

Extraction returns compact tuples (``RawSymbols``) rather than dataclasses: the index
persists them with ``marshal`` and builds ``FileSymbols`` only for the files someone
asks about, which keeps a warm start and the parse workers cheap.
"""

from __future__ import annotations

import functools
import inspect
import marshal
import re
from collections.abc import Iterable
from typing import Any

from tree_sitter import Node, QueryCursor, Tree

from context.languages import (
    LANGUAGES,
    TEXT_SPEC,
    LanguageSpec,
    has_grammar,
    parser,
    query,
    refine_language,
)
from context.skeleton import consistent, included_ranges, skipped_spans
from context.types import Definition, FileSymbols, Import

# Bumped whenever the extracted data changes, so persisted indexes are rebuilt.
EXTRACTOR_VERSION = 4

# name, kind, start_line, end_line, signature_end_line, doc, parent, bases, exported
RawDef = tuple[str, str, int, int, int, str, str, tuple[str, ...], bool]
# module, names, alias, line, local_names, kind
RawImport = tuple[str, tuple[str, ...], str, int, tuple[str, ...], str]
# definitions, imports, distinct identifier-shaped words ('\n'-joined bytes, maybe numbers)
RawSymbols = tuple[tuple[RawDef, ...], tuple[RawImport, ...], bytes]

EMPTY: RawSymbols = ((), (), b"")

# The definition around the one being read: (end byte, kind, name, skip children, bases).
_Enclosing = tuple[int, str, str, bool, tuple[str, ...]]

MAX_DOC_CHARS = 1000
# Docs are stored raw (with comment markers), cut to this: cleaning happens on reading.
RAW_DOC_CHARS = MAX_DOC_CHARS + MAX_DOC_CHARS // 4
SCAN_DEPTH = 2

_CONTAINERS = frozenset({"class", "interface", "struct", "enum", "trait", "impl"})
_FUNCTIONS = frozenset({"function", "method"})
_VALUE_FUNCTIONS = frozenset(
    {
        "arrow_function",
        "function_expression",
        "function",
        "generator_function",
    }
)
_VALUE_CLASSES = frozenset({"class", "class_expression"})
_NAME_RE = re.compile(r"^(?:[~#]?[A-Za-z_$][A-Za-z0-9_$]*|operator\W.*)$")
_STATIC_RE = re.compile(rb"\bstatic\b")
_PRIVATE_RE = re.compile(rb"\bprivate\b")
_UPPER_RE = re.compile(r"^_*[A-Z][A-Z0-9_]*$")
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
    tree = parse_skeleton(source) if language == "python" else parse(source, language)
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


def extract(tree: Tree, source: bytes, language: str, references: bool = True) -> RawSymbols:
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
    if spec.import_hints:
        _hinted_imports(tree, source, spec, import_nodes)
    rules = _RULES.get(language, _Rules)
    ctx = _Context(source, language, comment_nodes, attr_nodes, outers)
    out: list[RawDef] = []
    # Sorted by start, then widest first: a container is seen before what it contains.
    stack: list[_Enclosing] = []
    definition = rules.definition
    for key, (node, kind, name_node, caps) in sorted(defs.items()):
        start, end = key[0], -key[1]
        while stack and stack[-1][0] <= start:
            stack.pop()
        enclosing = stack[-1] if stack else None
        if enclosing is not None and (enclosing[3] or enclosing[1] in _FUNCTIONS):
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
    return tuple(out), tuple(imports), _references(source, spec) if references else b""


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
_SCANNED_KINDS = frozenset({"class", "interface", "struct", "enum", "trait", "impl", "module"})


def _role_of(caps: dict[str, list[Node]]) -> tuple[str, str, str]:
    """What a query pattern finds, from its captures (the role captures are never optional)."""
    for role in ("import", "comment", "outer", "scope", "attr"):
        if role in caps:
            return role, "", role
    for cap in caps:
        if cap.startswith("def."):
            return "def", cap[4:], cap
    return "none", "", ""


_IMPORT_TYPES = frozenset(
    {
        "import_statement",
        "import_from_statement",
        "call_expression",
        "function_call",
    }
)


def _hinted_imports(tree: Tree, source: bytes, spec: LanguageSpec, found: dict[int, Node]) -> None:
    """Imports below the scanned levels (function-local imports, require() calls).

    A literal search finds the candidates and the tree confirms them, which costs a few
    node lookups per import instead of a walk over every function body.
    """
    root = tree.root_node
    indented_only = spec.hint_indented_only
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
                if node.type in _IMPORT_TYPES:
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


# --- per-language rules -------------------------------------------------------------------


class _Context:
    """What the rules need besides the match: the source and the comments of the file."""

    __slots__ = ("source", "language", "comments", "attr_rows", "outers", "has_exports", "_by_end")

    def __init__(
        self,
        source: bytes,
        language: str,
        comments: list[Node],
        attrs: list[Node],
        outers: dict[int, Node],
    ) -> None:
        self.source = source
        self.language = language
        self.comments = comments
        self.outers = outers
        self.attr_rows: set[int] = set()
        for a in attrs:
            self.attr_rows.update(range(a.start_point.row, _end_row(a) + 1))
        self.has_exports = any(n.type == "export_statement" for n in outers.values())
        self._by_end: dict[int, Node] | None = None

    def text(self, node: Node) -> str:
        return self.source[node.start_byte : node.end_byte].decode("utf-8", "replace")

    def leading_comment(self, row: int) -> str:
        """The comment block that ends on the line above ``row`` and starts its lines."""
        if not self.comments:
            return ""
        if self._by_end is None:
            self._by_end = {_end_row(c): c for c in self.comments}
        by_end = self._by_end
        parts: list[str] = []
        row -= 1
        while row >= 0:
            if row in self.attr_rows:
                row -= 1
                continue
            c = by_end.get(row)
            if c is None or not self._owns_line(c.start_byte):
                break
            parts.append(self.text(c).rstrip("\r\n"))
            row = c.start_point.row - 1
        if not parts:
            return ""
        parts.reverse()
        return "\n".join(parts)[:RAW_DOC_CHARS]

    def _owns_line(self, start_byte: int) -> bool:
        line_start = self.source.rfind(b"\n", 0, start_byte) + 1
        return not self.source[line_start:start_byte].strip()


def _first_named(node: Node | None) -> Node | None:
    """The first named child (None when there is none: this binding raises instead)."""
    if node is None or not node.named_child_count:
        return None
    return node.named_child(0)


def _end_row(node: Node) -> int:
    """Last line of a node; a node that ends just after a newline ends on the line before."""
    end = node.end_point
    if end.column == 0 and end.row > node.start_point.row:
        return end.row - 1
    return end.row


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


class _Rules:
    """Language-neutral defaults; subclasses adjust kinds, docs, bases and visibility."""

    @classmethod
    def definition(
        cls,
        ctx: _Context,
        node: Node,
        kind: str,
        name_node: Node,
        caps: dict[str, list[Node]],
        enclosing: _Enclosing | None,
    ) -> RawDef | None:
        name = ctx.text(name_node)
        parent = ""
        if "parent" in caps:
            parent = ctx.text(caps["parent"][0])
        if "::" in name:
            scope, _, name = name.rpartition("::")
            parent = _strip_template(scope.rpartition("::")[2]) or parent
            if parent and kind == "function":
                kind = "method"
        if not name.isidentifier() and not _NAME_RE.match(name):
            return None
        refined = cls.refine_kind(ctx, kind, name, caps)
        if refined is None:
            return None
        kind = refined
        if enclosing is not None and not parent and enclosing[1] in _CONTAINERS:
            parent = enclosing[2]
            if kind == "function":
                kind = "method"
        start_byte = node.start_byte
        start_row = start = node.start_point.row
        if ctx.source[start_byte : start_byte + 1] == b"@":
            start = cls.after_decorators(node, start)
        end_point = node.end_point
        end = (
            end_point.row - 1
            if end_point.column == 0 and end_point.row > start_row
            else end_point.row
        )
        outer = ctx.outers.get(start_byte)
        if outer is None and "decl" in caps:
            outer = ctx.outers.get(caps["decl"][0].start_byte)
        anchor = outer.start_point.row if outer is not None else start_row
        sig_end = cls.signature_end(ctx, node, kind, caps, start, end)
        doc = cls.doc(ctx, node, caps, anchor)
        bases = cls.bases(ctx, caps) if "heritage" in caps else ()
        exported = cls.exported(ctx, node, name, name_node, caps, enclosing, outer)
        return (name, kind, start, end, max(start, min(sig_end, end)), doc, parent, bases, exported)

    @classmethod
    def refine_kind(
        cls,
        ctx: _Context,
        kind: str,
        name: str,
        caps: dict[str, list[Node]],
    ) -> str | None:
        return kind

    @staticmethod
    def after_decorators(node: Node, start: int) -> int:
        for child in node.children:
            if child.type != "decorator" and child.type != "marker_annotation":
                return int(child.start_point.row)
        return start

    @classmethod
    def signature_end(
        cls,
        ctx: _Context,
        node: Node,
        kind: str,
        caps: dict[str, list[Node]],
        start: int,
        end: int,
    ) -> int:
        if "sig" in caps:
            return int(caps["sig"][0].end_point.row)
        if "body" in caps:
            return int(caps["body"][0].start_point.row)
        if kind in _FUNCTIONS:
            return end
        return start

    @classmethod
    def doc(cls, ctx: _Context, node: Node, caps: dict[str, list[Node]], anchor: int) -> str:
        return ctx.leading_comment(anchor)

    @classmethod
    def bases(cls, ctx: _Context, caps: dict[str, list[Node]]) -> tuple[str, ...]:
        out: list[str] = []
        for h in caps["heritage"]:
            _collect_types(ctx, h, out)
        return tuple(out)

    @classmethod
    def exported(
        cls,
        ctx: _Context,
        node: Node,
        name: str,
        name_node: Node,
        caps: dict[str, list[Node]],
        enclosing: _Enclosing | None,
        outer: Node | None,
    ) -> bool:
        return True

    @classmethod
    def imports(cls, ctx: _Context, node: Node) -> Iterable[RawImport]:
        return ()


_TYPE_WRAPPERS = frozenset(
    {
        "extends_clause",
        "implements_clause",
        "extends_type_clause",
        "superclass",
        "super_interfaces",
        "extends_interfaces",
        "type_list",
        "trait_bounds",
        "base_class_clause",
        "class_heritage",
    }
)
_TYPE_SKIP = frozenset({"access_specifier", "type_arguments", "comment", "virtual"})


def _collect_types(ctx: _Context, node: Node, out: list[str]) -> None:
    if node.type in _TYPE_WRAPPERS:
        for child in node.named_children:
            _collect_types(ctx, child, out)
    elif node.type not in _TYPE_SKIP:
        out.append(ctx.text(node))


def _strip_template(name: str) -> str:
    cut = name.find("<")
    return name[:cut] if cut >= 0 else name


def _string_content(ctx: _Context, node: Node) -> str:
    """The text of a string literal without its quotes."""
    text = ctx.text(node)
    if len(text) >= 2 and text[0] in "'\"`<" and text[-1] in "'\"`>":
        return text[1:-1]
    return text


class _PythonRules(_Rules):
    @classmethod
    def definition(
        cls,
        ctx: _Context,
        node: Node,
        kind: str,
        name_node: Node,
        caps: dict[str, list[Node]],
        enclosing: _Enclosing | None,
    ) -> RawDef | None:
        """``_Rules.definition`` specialised to Python's query (no ``parent``, ``decl``,
        ``::`` names or decorators inside the node): about 40% cheaper per definition."""
        source = ctx.source
        name = source[name_node.start_byte : name_node.end_byte].decode("utf-8", "replace")
        if not name.isidentifier() and not _NAME_RE.match(name):
            return None
        if kind == "variable" and _UPPER_RE.match(name):
            kind = "constant"
        parent = ""
        if enclosing is not None and enclosing[1] in _CONTAINERS:
            parent = enclosing[2]
            if kind == "function":
                kind = "method"
        start_byte = node.start_byte
        start_row = start = node.start_point.row
        if source[start_byte : start_byte + 1] == b"@":
            start = cls.after_decorators(node, start)
        end_point = node.end_point
        end = (
            end_point.row - 1
            if end_point.column == 0 and end_point.row > start_row
            else end_point.row
        )
        outer = ctx.outers.get(start_byte)
        sig = caps.get("sig")
        if sig:
            sig_end = sig[0].end_point.row
        else:
            body = caps.get("body")
            if body:
                sig_end = body[0].start_point.row
            else:
                sig_end = end if kind in _FUNCTIONS else start
        docstring = caps.get("doc")
        if docstring:
            doc_node = docstring[0]
            doc_start = doc_node.start_byte
            doc_end = min(doc_node.end_byte, doc_start + RAW_DOC_CHARS)
            doc = source[doc_start:doc_end].decode("utf-8", "replace")
        else:
            doc = ctx.leading_comment(outer.start_point.row if outer is not None else start_row)
        bases = cls.bases(ctx, caps) if "heritage" in caps else ()
        exported = name[:1] != "_" or (name[:2] == "__" and name[-2:] == "__")
        return (name, kind, start, end, max(start, min(sig_end, end)), doc, parent, bases, exported)

    @classmethod
    def bases(cls, ctx: _Context, caps: dict[str, list[Node]]) -> tuple[str, ...]:
        return tuple(
            ctx.text(arg)
            for arg in caps["heritage"][0].named_children
            if arg.type not in ("keyword_argument", "list_splat", "dictionary_splat", "comment")
        )

    @classmethod
    def imports(cls, ctx: _Context, node: Node) -> Iterable[RawImport]:
        line = node.start_point.row
        if node.type == "import_statement":
            for child in node.named_children:
                if child.type == "aliased_import":
                    mod = child.child_by_field_name("name")
                    alias = child.child_by_field_name("alias")
                    if mod is not None:
                        yield (ctx.text(mod), (), ctx.text(alias) if alias else "", line, (), "")
                elif child.type == "dotted_name":
                    yield (ctx.text(child), (), "", line, (), "")
            return
        module_node = node.child_by_field_name("module_name")
        if module_node is None:
            return
        names: list[str] = []
        local: list[str] = []
        aliased = False
        for child in node.children_by_field_name("name"):
            if child.type == "aliased_import":
                n = child.child_by_field_name("name")
                a = child.child_by_field_name("alias")
                names.append(ctx.text(n) if n else "")
                local.append(ctx.text(a) if a else names[-1])
                aliased = True
            else:
                names.append(ctx.text(child))
                local.append(names[-1])
        for child in node.named_children:
            if child.type == "wildcard_import":
                names.append("*")
                local.append("*")
        yield (ctx.text(module_node), tuple(names), "", line, tuple(local) if aliased else (), "")


class _JsRules(_Rules):
    @classmethod
    def refine_kind(
        cls,
        ctx: _Context,
        kind: str,
        name: str,
        caps: dict[str, list[Node]],
    ) -> str | None:
        if kind != "variable":
            return kind
        value = caps.get("value")
        if value:
            vtype = value[0].type
            if vtype in _VALUE_FUNCTIONS:
                return "function"
            if vtype in _VALUE_CLASSES:
                return "class"
        decl = caps.get("decl")
        if decl and ctx.source.startswith(b"const", decl[0].start_byte):
            return "constant"
        return "variable"

    @classmethod
    def signature_end(
        cls,
        ctx: _Context,
        node: Node,
        kind: str,
        caps: dict[str, list[Node]],
        start: int,
        end: int,
    ) -> int:
        value = caps.get("value")
        if value and kind in ("function", "class"):
            body = value[0].child_by_field_name("body")
            if body is not None:
                return int(body.start_point.row)
        return super().signature_end(ctx, node, kind, caps, start, end)

    @classmethod
    def exported(
        cls,
        ctx: _Context,
        node: Node,
        name: str,
        name_node: Node,
        caps: dict[str, list[Node]],
        enclosing: _Enclosing | None,
        outer: Node | None,
    ) -> bool:
        if enclosing is not None and enclosing[1] in _CONTAINERS:
            if name.startswith("#"):
                return False
            return not _PRIVATE_RE.search(ctx.source, node.start_byte, name_node.start_byte)
        if outer is not None and outer.type == "export_statement":
            return True
        # A script or CommonJS module has no export statements: anything may be used.
        return not ctx.has_exports

    @classmethod
    def imports(cls, ctx: _Context, node: Node) -> Iterable[RawImport]:
        line = node.start_point.row
        if node.type == "call_expression":
            args = node.child_by_field_name("arguments")
            string = _first_named(args) if args is not None else None
            if string is None:
                return
            module = _string_content(ctx, string)
            names: tuple[str, ...] = ()
            alias = ""
            holder = node.parent
            if holder is not None and holder.type == "await_expression":
                holder = holder.parent
            if holder is not None and holder.type == "variable_declarator":
                target = holder.child_by_field_name("name")
                if target is not None and target.type == "identifier":
                    alias = ctx.text(target)
                elif target is not None and target.type == "object_pattern":
                    names = tuple(
                        _pattern_name(ctx, p) for p in target.named_children if p.type != "comment"
                    )
            kind = (
                "require"
                if node.child_by_field_name("function") is not None
                and ctx.source.startswith(b"require", node.start_byte)
                else "dynamic"
            )
            yield (module, tuple(n for n in names if n), alias, line, (), kind)
            return
        source_node = node.child_by_field_name("source")
        if node.type == "import_statement" and source_node is None:
            for child in node.named_children:  # import x = require("y")
                if child.type == "import_require_clause":
                    source_node = child.child_by_field_name("source")
                    ident = _first_named(child)
                    if source_node is not None:
                        yield (
                            _string_content(ctx, source_node),
                            (),
                            ctx.text(ident) if ident is not None else "",
                            line,
                            (),
                            "",
                        )
            return
        if source_node is None:
            return
        module = _string_content(ctx, source_node)
        names_list: list[str] = []
        local: list[str] = []
        alias = ""
        aliased = False
        reexport = node.type == "export_statement"
        for child in node.named_children:
            ctype = child.type
            if ctype == "import_clause":
                for part in child.named_children:
                    if part.type == "identifier":  # default import: keep the local name
                        names_list.append(ctx.text(part))
                        local.append(names_list[-1])
                    elif part.type == "namespace_import":
                        ident = _first_named(part)
                        alias = ctx.text(ident) if ident is not None else ""
                    elif part.type == "named_imports":
                        aliased |= _specifiers(ctx, part, names_list, local)
            elif ctype == "export_clause":
                aliased |= _specifiers(ctx, child, names_list, local)
            elif ctype == "namespace_export":
                ident = _first_named(child)
                alias = ctx.text(ident) if ident is not None else ""
        if reexport and not names_list and not alias:
            names_list.append("*")
            local.append("*")
        yield (
            module,
            tuple(names_list),
            alias,
            line,
            tuple(local) if aliased else (),
            "reexport" if reexport else "",
        )


def _pattern_name(ctx: _Context, node: Node) -> str:
    if node.type == "shorthand_property_identifier_pattern":
        return ctx.text(node)
    if node.type == "pair_pattern":
        key = node.child_by_field_name("key")
        return ctx.text(key) if key is not None else ""
    return ""


def _specifiers(ctx: _Context, node: Node, names: list[str], local: list[str]) -> bool:
    aliased = False
    for spec in node.named_children:
        if spec.type not in ("import_specifier", "export_specifier"):
            continue
        n = spec.child_by_field_name("name")
        a = spec.child_by_field_name("alias")
        if n is None:
            continue
        names.append(_string_content(ctx, n) if n.type == "string" else ctx.text(n))
        if a is not None:
            local.append(ctx.text(a))
            aliased = True
        else:
            local.append(names[-1])
    return aliased


class _GoRules(_Rules):
    @classmethod
    def refine_kind(
        cls,
        ctx: _Context,
        kind: str,
        name: str,
        caps: dict[str, list[Node]],
    ) -> str | None:
        if kind == "type":
            value = caps.get("value")
            if value:
                if value[0].type == "struct_type":
                    return "struct"
                if value[0].type == "interface_type":
                    return "interface"
        return kind

    @classmethod
    def signature_end(
        cls,
        ctx: _Context,
        node: Node,
        kind: str,
        caps: dict[str, list[Node]],
        start: int,
        end: int,
    ) -> int:
        if kind in ("struct", "interface"):
            return int(caps["value"][0].start_point.row)
        return super().signature_end(ctx, node, kind, caps, start, end)

    @classmethod
    def exported(
        cls,
        ctx: _Context,
        node: Node,
        name: str,
        name_node: Node,
        caps: dict[str, list[Node]],
        enclosing: _Enclosing | None,
        outer: Node | None,
    ) -> bool:
        return name[:1].isupper()

    @classmethod
    def imports(cls, ctx: _Context, node: Node) -> Iterable[RawImport]:
        specs: list[Node] = []
        for child in node.named_children:
            if child.type == "import_spec":
                specs.append(child)
            elif child.type == "import_spec_list":
                specs.extend(c for c in child.named_children if c.type == "import_spec")
        for spec in specs:
            path = spec.child_by_field_name("path")
            name = spec.child_by_field_name("name")
            if path is None:
                continue
            yield (
                _string_content(ctx, path),
                (),
                ctx.text(name) if name is not None else "",
                spec.start_point.row,
                (),
                "",
            )


class _RustRules(_Rules):
    @classmethod
    def exported(
        cls,
        ctx: _Context,
        node: Node,
        name: str,
        name_node: Node,
        caps: dict[str, list[Node]],
        enclosing: _Enclosing | None,
        outer: Node | None,
    ) -> bool:
        if "vis" in caps or node.type == "impl_item":
            return True
        # Items of a trait, and of a trait's impl, are as visible as the trait.
        return enclosing is not None and (enclosing[1] == "trait" or bool(enclosing[4]))

    @classmethod
    def imports(cls, ctx: _Context, node: Node) -> Iterable[RawImport]:
        line = node.start_point.row
        if node.type == "mod_item":
            mod_name = node.child_by_field_name("name")
            if mod_name is not None:
                yield (ctx.text(mod_name), (), "", line, (), "mod")
            return
        if node.type == "extern_crate_declaration":
            crate = node.child_by_field_name("name")
            rename = node.child_by_field_name("alias")
            if crate is not None:
                yield (ctx.text(crate), (), ctx.text(rename) if rename else "", line, (), "")
            return
        arg = node.child_by_field_name("argument")
        if arg is None:
            return
        flat: list[tuple[str, str, str]] = []
        _flatten_use(ctx, arg, "", flat)
        grouped: dict[str, tuple[list[str], list[str]]] = {}
        whole: list[tuple[str, str]] = []
        for module, name, alias in flat:
            if not module:
                whole.append((name, alias))
                continue
            names, local = grouped.setdefault(module, ([], []))
            names.append(name)
            local.append(alias or name)
        for module, alias in whole:
            yield (module, (), alias if alias != module else "", line, (), "use")
        for module, (names, local) in grouped.items():
            yield (module, tuple(names), "", line, tuple(local) if local != names else (), "use")


def _flatten_use(ctx: _Context, node: Node, prefix: str, out: list[tuple[str, str, str]]) -> None:
    ntype = node.type
    join = lambda p, s: f"{p}::{s}" if p else s  # noqa: E731
    if ntype == "scoped_identifier":
        path = node.child_by_field_name("path")
        name_node = node.child_by_field_name("name")
        module = join(prefix, ctx.text(path)) if path is not None else prefix
        out.append((module, ctx.text(name_node) if name_node is not None else "", ""))
    elif ntype in ("identifier", "self", "crate", "super"):
        out.append((prefix, ctx.text(node), ""))
    elif ntype == "use_as_clause":
        path = node.child_by_field_name("path")
        alias = node.child_by_field_name("alias")
        if path is None:
            return
        before = len(out)
        _flatten_use(ctx, path, prefix, out)
        if alias is not None and len(out) > before:
            module, bound, _ = out[-1]
            out[-1] = (module, bound, ctx.text(alias))
    elif ntype == "use_list":
        for child in node.named_children:
            _flatten_use(ctx, child, prefix, out)
    elif ntype == "scoped_use_list":
        path = node.child_by_field_name("path")
        lst = node.child_by_field_name("list")
        inner = join(prefix, ctx.text(path)) if path is not None else prefix
        if lst is not None:
            _flatten_use(ctx, lst, inner, out)
    elif ntype == "use_wildcard":
        path = _first_named(node)
        out.append((join(prefix, ctx.text(path)) if path is not None else prefix, "*", ""))


class _JavaRules(_Rules):
    @classmethod
    def refine_kind(
        cls,
        ctx: _Context,
        kind: str,
        name: str,
        caps: dict[str, list[Node]],
    ) -> str | None:
        if kind == "constant" and "mods" in caps:
            mods = ctx.text(caps["mods"][0])
            if "static" not in mods or "final" not in mods:
                return None  # instance fields are not definitions worth indexing
        return kind

    @classmethod
    def exported(
        cls,
        ctx: _Context,
        node: Node,
        name: str,
        name_node: Node,
        caps: dict[str, list[Node]],
        enclosing: _Enclosing | None,
        outer: Node | None,
    ) -> bool:
        mods = caps.get("mods")
        return not (mods and "private" in ctx.text(mods[0]))

    @classmethod
    def imports(cls, ctx: _Context, node: Node) -> Iterable[RawImport]:
        text = ctx.text(node)
        text = text.removeprefix("import").strip().rstrip(";").strip()
        if text.startswith("static "):
            text = text[7:].strip()
        text = "".join(text.split())
        module, _, name = text.rpartition(".")
        if module:
            yield (module, (name,), "", node.start_point.row, (), "")


class _CRules(_Rules):
    @classmethod
    def exported(
        cls,
        ctx: _Context,
        node: Node,
        name: str,
        name_node: Node,
        caps: dict[str, list[Node]],
        enclosing: _Enclosing | None,
        outer: Node | None,
    ) -> bool:
        if enclosing is not None and enclosing[1] in _CONTAINERS:
            return True
        return not _STATIC_RE.search(ctx.source, node.start_byte, name_node.start_byte)

    @classmethod
    def imports(cls, ctx: _Context, node: Node) -> Iterable[RawImport]:
        path = node.child_by_field_name("path")
        if path is None:
            return
        text = ctx.text(path)
        if path.type == "string_literal":
            text = text[1:-1]
        yield (text, (), "", node.start_point.row, (), "include")


class _LuaRules(_Rules):
    @classmethod
    def exported(
        cls,
        ctx: _Context,
        node: Node,
        name: str,
        name_node: Node,
        caps: dict[str, list[Node]],
        enclosing: _Enclosing | None,
        outer: Node | None,
    ) -> bool:
        return not ctx.source.startswith(b"local", node.start_byte)

    @classmethod
    def imports(cls, ctx: _Context, node: Node) -> Iterable[RawImport]:
        args = node.child_by_field_name("arguments")
        string = _first_named(args) if args is not None else None
        if string is None:
            return
        alias = ""
        holder = node.parent
        if holder is not None and holder.type == "expression_list":
            assign = holder.parent
            if assign is not None and assign.type == "assignment_statement":
                targets = _first_named(assign)
                if targets is not None and targets.named_child_count == 1:
                    alias = ctx.text(_first_named(targets))  # type: ignore[arg-type]
        yield (_string_content(ctx, string), (), alias, node.start_point.row, (), "require")


_RULES: dict[str, type[_Rules]] = {
    "python": _PythonRules,
    "javascript": _JsRules,
    "typescript": _JsRules,
    "tsx": _JsRules,
    "go": _GoRules,
    "rust": _RustRules,
    "java": _JavaRules,
    "c": _CRules,
    "cpp": _CRules,
    "lua": _LuaRules,
}


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
