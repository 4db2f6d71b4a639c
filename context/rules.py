"""The base of every language's extraction rules (``context/lang/*.py``).

``context.symbols`` runs a language's query and hands each definition and import node
to the language's ``Rules`` class, which says what a query cannot: the definition's
kind, where its signature ends, its doc comment, its base classes, whether importers
can see it, and what an import statement binds. ``Rules`` holds the language-neutral
defaults; a language file subclasses it and overrides only what differs.

Rules return compact tuples (``RawDef``, ``RawImport``) rather than dataclasses: the
index persists them with ``marshal`` and builds ``FileSymbols`` only for the files
someone asks about.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

from tree_sitter import Node

from context.types import CALLABLE_KINDS, CONTAINER_KINDS

# name, kind, start_line, end_line, signature_end_line, doc, parent, bases, exported
RawDef = tuple[str, str, int, int, int, str, str, tuple[str, ...], bool]
# module, names, alias, line, local_names, kind
RawImport = tuple[str, tuple[str, ...], str, int, tuple[str, ...], str]

# The definition around the one being read: (end byte, kind, name, skip children, bases).
Enclosing = tuple[int, str, str, bool, tuple[str, ...]]

MAX_DOC_CHARS = 1000
# Docs are stored raw (with comment markers), cut to this: cleaning happens on reading.
RAW_DOC_CHARS = MAX_DOC_CHARS + MAX_DOC_CHARS // 4

# A definition name: an identifier (C++ destructors `~A`, JS private `#x`) or an operator.
NAME_RE = re.compile(r"^(?:[~#]?[A-Za-z_$][A-Za-z0-9_$]*|operator\W.*)$")


class RuleContext:
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
            self.attr_rows.update(range(a.start_point.row, end_row(a) + 1))
        self.has_exports = any(n.type == "export_statement" for n in outers.values())
        self._by_end: dict[int, Node] | None = None

    def text(self, node: Node) -> str:
        return self.source[node.start_byte : node.end_byte].decode("utf-8", "replace")

    def leading_comment(self, row: int) -> str:
        """The comment block that ends on the line above ``row`` and starts its lines."""
        if not self.comments:
            return ""
        if self._by_end is None:
            self._by_end = {end_row(c): c for c in self.comments}
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


def first_named(node: Node | None) -> Node | None:
    """The first named child (None when there is none: this binding raises instead)."""
    if node is None or not node.named_child_count:
        return None
    return node.named_child(0)


def end_row(node: Node) -> int:
    """Last line of a node; a node that ends just after a newline ends on the line before."""
    end = node.end_point
    if end.column == 0 and end.row > node.start_point.row:
        return end.row - 1
    return end.row


class Rules:
    """Language-neutral defaults; subclasses adjust kinds, docs, bases and visibility."""

    @classmethod
    def definition(
        cls,
        ctx: RuleContext,
        node: Node,
        kind: str,
        name_node: Node,
        caps: dict[str, list[Node]],
        enclosing: Enclosing | None,
    ) -> RawDef | None:
        name = ctx.text(name_node)
        parent = ""
        if "parent" in caps:
            parent = ctx.text(caps["parent"][0])
        if "::" in name:
            scope, _, name = name.rpartition("::")
            parent = strip_template(scope.rpartition("::")[2]) or parent
            if parent and kind == "function":
                kind = "method"
        if not name.isidentifier() and not NAME_RE.match(name):
            return None
        refined = cls.refine_kind(ctx, kind, name, caps)
        if refined is None:
            return None
        kind = refined
        if enclosing is not None and not parent and enclosing[1] in CONTAINER_KINDS:
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
        ctx: RuleContext,
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
        ctx: RuleContext,
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
        if kind in CALLABLE_KINDS:
            return end
        return start

    @classmethod
    def doc(cls, ctx: RuleContext, node: Node, caps: dict[str, list[Node]], anchor: int) -> str:
        return ctx.leading_comment(anchor)

    @classmethod
    def bases(cls, ctx: RuleContext, caps: dict[str, list[Node]]) -> tuple[str, ...]:
        out: list[str] = []
        for h in caps["heritage"]:
            collect_types(ctx, h, out)
        return tuple(out)

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
        return True

    @classmethod
    def imports(cls, ctx: RuleContext, node: Node) -> Iterable[RawImport]:
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


def collect_types(ctx: RuleContext, node: Node, out: list[str]) -> None:
    if node.type in _TYPE_WRAPPERS:
        for child in node.named_children:
            collect_types(ctx, child, out)
    elif node.type not in _TYPE_SKIP:
        out.append(ctx.text(node))


def strip_template(name: str) -> str:
    cut = name.find("<")
    return name[:cut] if cut >= 0 else name


def string_content(ctx: RuleContext, node: Node) -> str:
    """The text of a string literal without its quotes."""
    text = ctx.text(node)
    if len(text) >= 2 and text[0] in "'\"`<" and text[-1] in "'\"`>":
        return text[1:-1]
    return text
