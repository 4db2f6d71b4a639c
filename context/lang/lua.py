"""Lua: definitions (functions, ``M.f``/``M:m`` table members), ``require`` and its
resolution.

Resolution: ``require("a.b")`` -> ``a/b.lua`` or ``a/b/init.lua`` under the root, ``lua/``,
``src/``, the requiring file's folder, or any indexed path ending so. ``local`` functions
are not exported.
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from typing import Any

from tree_sitter import Node

from context.lang import LanguageSpec, Resolver, words
from context.rules import Enclosing, RawImport, RuleContext, Rules, first_named, string_content
from context.types import Import


def _grammar() -> Any:
    import tree_sitter_lua

    return tree_sitter_lua.language()


QUERY = r"""
(function_declaration name: (identifier) @name body: (block)? @body) @def.function
(function_declaration name: (dot_index_expression table: (_) @parent field: (identifier) @name)
  body: (block)? @body) @def.function
(function_declaration name: (method_index_expression table: (_) @parent method: (identifier) @name)
  body: (block)? @body) @def.method
(assignment_statement (variable_list name: (dot_index_expression table: (_) @parent
  field: (identifier) @name)) (expression_list value: (function_definition body: (block)? @body)))
  @def.function
(comment) @comment
"""

KEYWORDS = words(
    """and break do else elseif end false for function goto if in local nil not or
repeat return then true until while self"""
)


class LuaRules(Rules):
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
        return not ctx.source.startswith(b"local", node.start_byte)

    @classmethod
    def imports(cls, ctx: RuleContext, node: Node) -> Iterable[RawImport]:
        args = node.child_by_field_name("arguments")
        string = first_named(args) if args is not None else None
        if string is None:
            return
        alias = ""
        holder = node.parent
        if holder is not None and holder.type == "expression_list":
            assign = holder.parent
            if assign is not None and assign.type == "assignment_statement":
                targets = first_named(assign)
                if targets is not None and targets.named_child_count == 1:
                    alias = ctx.text(first_named(targets))  # type: ignore[arg-type]
        yield (string_content(ctx, string), (), alias, node.start_point.row, (), "require")


class LuaResolver(Resolver):
    def resolve(self, from_path: str, imp: Import) -> list[str]:
        rel = imp.module.replace(".", os.sep)
        if not rel or rel.startswith(os.sep):
            return []
        has = self.view.has_file
        root = self.view.root_of(from_path) or os.path.dirname(from_path)
        for base in (
            root,
            os.path.join(root, "lua"),
            os.path.join(root, "src"),
            os.path.dirname(from_path),
        ):
            for candidate in (
                os.path.join(base, rel + ".lua"),
                os.path.join(base, rel, "init.lua"),
            ):
                if has(candidate):
                    return [candidate]
        for candidate_rel in (rel + ".lua", os.path.join(rel, "init.lua")):
            found = self.host.by_suffix(candidate_rel, from_path)
            if found:
                return [found]
        return []


SPECS = (
    LanguageSpec(
        "lua",
        (".lua",),
        _grammar,
        QUERY,
        KEYWORDS,
        import_hints=(b"require",),
        import_node_types=frozenset({"function_call"}),
        rules=LuaRules,
        resolver=LuaResolver,
        editor_ids=("lua",),
    ),
)
