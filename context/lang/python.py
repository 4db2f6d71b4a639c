"""Python: definitions, imports and import resolution.

Resolution: relative (``from . import x``, ``from ..a import b``) and absolute imports,
searched from the source root of the importing file (the folder above its top-level
package), from every source root that holds a top-level package of that name
(monorepos, ``src/`` layouts), then from the workspace root and ``root/src``.
``from pkg import Name``: a submodule ``pkg/Name.py`` if there is one, else
``pkg/__init__.py``, following re-exports (``from .impl import Name``, ``*``) a few levels
to the file that defines ``Name``.

Files read from disk are parsed without the middles of their function bodies
(``context.skeleton``); open documents are parsed whole.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterable, Sequence
from typing import Any

from tree_sitter import Node

from context.lang import LanguageSpec, ResolveHost, Resolver, Retrieval, words
from context.rules import (
    NAME_RE,
    RAW_DOC_CHARS,
    Enclosing,
    RawDef,
    RawImport,
    RuleContext,
    Rules,
)
from context.types import CALLABLE_KINDS, CONTAINER_KINDS, Import


def _grammar() -> Any:
    import tree_sitter_python

    return tree_sitter_python.language()


QUERY = r"""
(function_definition name: (identifier) @name ":" @sig
  body: (block . (expression_statement (string) @doc)?)) @def.function
(class_definition name: (identifier) @name superclasses: (argument_list)? @heritage
  ":" @sig body: (block . (expression_statement (string) @doc)?) @body) @def.class
(decorated_definition definition: (_) @decorated) @outer
(module (expression_statement (assignment left: (identifier) @name)) @def.variable)
(module (type_alias_statement left: (type (identifier) @name)) @def.type)
(import_statement) @import
(import_from_statement) @import
(comment) @comment
(if_statement consequence: (block) @scope)
(elif_clause consequence: (block) @scope)
(else_clause body: (block) @scope)
(try_statement body: (block) @scope)
(except_clause (block) @scope)
(finally_clause (block) @scope)
"""

KEYWORDS = words(
    """False None True and as assert async await break class continue def del elif
else except finally for from global if import in is lambda nonlocal not or pass raise return
try while with yield self cls match case type"""
)

_UPPER_RE = re.compile(r"^_*[A-Z][A-Z0-9_]*$")
_PY_EXTS = (".py", ".pyi")


class PythonRules(Rules):
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
        """``Rules.definition`` specialised to Python's query (no ``parent``, ``decl``,
        ``::`` names or decorators inside the node): about 40% cheaper per definition."""
        source = ctx.source
        name = source[name_node.start_byte : name_node.end_byte].decode("utf-8", "replace")
        if not name.isidentifier() and not NAME_RE.match(name):
            return None
        if kind == "variable" and _UPPER_RE.match(name):
            kind = "constant"
        parent = ""
        if enclosing is not None and enclosing[1] in CONTAINER_KINDS:
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
                sig_end = end if kind in CALLABLE_KINDS else start
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
    def bases(cls, ctx: RuleContext, caps: dict[str, list[Node]]) -> tuple[str, ...]:
        return tuple(
            ctx.text(arg)
            for arg in caps["heritage"][0].named_children
            if arg.type not in ("keyword_argument", "list_splat", "dictionary_splat", "comment")
        )

    @classmethod
    def imports(cls, ctx: RuleContext, node: Node) -> Iterable[RawImport]:
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


class PythonResolver(Resolver):
    def __init__(self, host: ResolveHost) -> None:
        super().__init__(host)
        self._py_roots: dict[str, str] = {}
        self._py_top: dict[str, list[str]] | None = None

    def reset(self, project_files_changed: bool) -> None:
        self._py_roots.clear()
        self._py_top = None

    def resolve(self, from_path: str, imp: Import) -> list[str]:
        module = imp.module
        if module.startswith("."):
            dots = len(module) - len(module.lstrip("."))
            base = os.path.dirname(from_path)
            for _ in range(dots - 1):
                base = os.path.dirname(base)
            rest = module[dots:]
            return self._py_from_base(base, rest.split(".") if rest else [], imp)
        parts = module.split(".")
        for base in self._py_bases(from_path, parts[0]):
            found = self._py_from_base(base, parts, imp)
            if found:
                return found
        return []

    def _py_from_base(self, base: str, parts: list[str], imp: Import) -> list[str]:
        target, package = self._py_locate(base, parts)
        if target is None and package is None:
            return []
        if not imp.names:
            return [target] if target else []
        out: list[str] = []
        for name in imp.names:
            sub = None
            if package is not None and name != "*":
                sub, _ = self._py_locate(package, [name])
            if sub:
                out.append(sub)
            elif target:
                out.extend(self.host.follow(target, name, "python"))
        return out

    def _py_locate(self, base: str, parts: Sequence[str]) -> tuple[str | None, str | None]:
        """(module file, package folder) of ``parts`` under ``base``."""
        path = os.path.join(base, *parts) if parts else base
        if parts:
            for ext in _PY_EXTS:
                if self.view.has_file(path + ext):
                    return path + ext, None
        for ext in _PY_EXTS:
            init = os.path.join(path, "__init__" + ext)
            if self.view.has_file(init):
                return init, path
        if parts and self.view.has_dir(path):  # namespace package
            return None, path
        return None, None

    def _py_source_root(self, folder: str) -> str:
        """The folder above the top-level package containing ``folder``."""
        cached = self._py_roots.get(folder)
        if cached is not None:
            return cached
        has = self.view.has_file
        current = folder
        while has(os.path.join(current, "__init__.py")) or has(
            os.path.join(current, "__init__.pyi")
        ):
            parent = os.path.dirname(current)
            if parent == current:
                break
            current = parent
        self._py_roots[folder] = current
        return current

    def _py_bases(self, from_path: str, top: str) -> list[str]:
        bases = [self._py_source_root(os.path.dirname(from_path))]
        bases.extend(self._py_top_level().get(top, ()))
        own = self.view.root_of(from_path)
        # A document in no workspace folder (an untitled buffer): modules at the top of
        # any folder.
        for root in (own,) if own else self.view.roots:
            bases.extend((root, os.path.join(root, "src")))
        return list(dict.fromkeys(bases))

    def _py_top_level(self) -> dict[str, list[str]]:
        """Top-level package/module name -> source roots that hold it."""
        table = self._py_top
        if table is not None:
            return table
        table = {}
        seen: set[str] = set()
        for path in self.view.files_named("__init__.py") + self.view.files_named("__init__.pyi"):
            folder = os.path.dirname(path)
            source_root = self._py_source_root(folder)
            rel = os.path.relpath(folder, source_root)
            top = rel.split(os.sep, 1)[0]
            key = f"{top}\0{source_root}"
            if top not in (".", "..") and key not in seen:
                seen.add(key)
                table.setdefault(top, []).append(source_root)
        self._py_top = table
        return table


class PythonRetrieval(Retrieval):
    """Names come through imports; an `__init__.py` re-exports; `from pkg import mod`
    may bind a module."""

    names_need_imports = True
    reexports = True

    @classmethod
    def submodule(cls, imp: Import, name: str) -> Import | None:
        module = imp.module
        joined = module + name if not module or module.endswith(".") else f"{module}.{name}"
        return Import(module=joined, line=imp.line)


SPECS = (
    LanguageSpec(
        "python",
        (".py", ".pyi"),
        _grammar,
        QUERY,
        KEYWORDS,
        import_hints=(b"import",),
        import_node_types=frozenset({"import_statement", "import_from_statement"}),
        hint_indented_only=True,
        rules=PythonRules,
        resolver=PythonResolver,
        retrieval=PythonRetrieval,
        editor_ids=("python",),
        skeleton_parse=True,
    ),
)
