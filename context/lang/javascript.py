"""JavaScript (and JSX): definitions, imports and import resolution, shared with
TypeScript (``context.lang.typescript``).

Resolution: relative specifiers with extension probing (``.ts .tsx .d.ts .js .jsx .mjs
.cjs``, ``./x.js`` written for ``x.ts``) and ``index`` files;
``tsconfig.json``/``jsconfig.json`` ``compilerOptions.paths`` and ``baseUrl`` (comments and
trailing commas tolerated, ``extends`` followed); workspace packages by their
``package.json`` name; re-exports (``export ... from``) followed like Python's.
Minified bundles (``*.min.js``) are generated code and are not indexed.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterable
from typing import Any

from tree_sitter import Node

from context.lang import LanguageSpec, ResolveHost, Resolver, Retrieval, word_table, words
from context.rules import (
    Enclosing,
    RawImport,
    RuleContext,
    Rules,
    first_named,
    string_content,
)
from context.types import CONTAINER_KINDS, Import


def _grammar() -> Any:
    import tree_sitter_javascript

    return tree_sitter_javascript.language()


# Shared by JavaScript, TypeScript and TSX; TypeScript's query adds its own nodes.
QUERY = r"""
(function_declaration name: (identifier) @name body: (_) @body) @def.function
(generator_function_declaration name: (identifier) @name body: (_) @body) @def.function
(class_declaration name: (_) @name (class_heritage)? @heritage body: (class_body) @body) @def.class
(method_definition name: (_) @name body: (_) @body) @def.method
(program (lexical_declaration (variable_declarator name: (identifier) @name value: (_)? @value)
  @def.variable) @decl)
(program (variable_declaration (variable_declarator name: (identifier) @name value: (_)? @value)
  @def.variable) @decl)
(program (export_statement declaration: (lexical_declaration (variable_declarator
  name: (identifier) @name value: (_)? @value) @def.variable) @decl))
(export_statement declaration: (_) @decorated) @outer
(import_statement) @import
(export_statement source: (_)) @import
(comment) @comment
"""

KEYWORDS_TEXT = """break case catch class const continue debugger default delete do else export
extends false finally for function if import in instanceof let new null return super switch this
throw true try typeof undefined var void while with yield async await of static get set"""

# `$` is part of identifiers.
WORDS = word_table(b"$")
# require() and import() can sit anywhere in the code.
IMPORT_HINTS = (b"require(", b"import(")
IMPORT_NODE_TYPES = frozenset({"call_expression", "import_statement"})
PROJECT_FILES = ("tsconfig.json", "jsconfig.json", "package.json")

_VALUE_FUNCTIONS = frozenset(
    {
        "arrow_function",
        "function_expression",
        "function",
        "generator_function",
    }
)
_VALUE_CLASSES = frozenset({"class", "class_expression"})
_PRIVATE_RE = re.compile(rb"\bprivate\b")


class ScriptRules(Rules):
    @classmethod
    def refine_kind(
        cls,
        ctx: RuleContext,
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
        ctx: RuleContext,
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
        ctx: RuleContext,
        node: Node,
        name: str,
        name_node: Node,
        caps: dict[str, list[Node]],
        enclosing: Enclosing | None,
        outer: Node | None,
    ) -> bool:
        if enclosing is not None and enclosing[1] in CONTAINER_KINDS:
            if name.startswith("#"):
                return False
            return not _PRIVATE_RE.search(ctx.source, node.start_byte, name_node.start_byte)
        if outer is not None and outer.type == "export_statement":
            return True
        # A script or CommonJS module has no export statements: anything may be used.
        return not ctx.has_exports

    @classmethod
    def imports(cls, ctx: RuleContext, node: Node) -> Iterable[RawImport]:
        line = node.start_point.row
        if node.type == "call_expression":
            args = node.child_by_field_name("arguments")
            string = first_named(args) if args is not None else None
            if string is None:
                return
            module = string_content(ctx, string)
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
                    ident = first_named(child)
                    if source_node is not None:
                        yield (
                            string_content(ctx, source_node),
                            (),
                            ctx.text(ident) if ident is not None else "",
                            line,
                            (),
                            "",
                        )
            return
        if source_node is None:
            return
        module = string_content(ctx, source_node)
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
                        ident = first_named(part)
                        alias = ctx.text(ident) if ident is not None else ""
                    elif part.type == "named_imports":
                        aliased |= _specifiers(ctx, part, names_list, local)
            elif ctype == "export_clause":
                aliased |= _specifiers(ctx, child, names_list, local)
            elif ctype == "namespace_export":
                ident = first_named(child)
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


def _pattern_name(ctx: RuleContext, node: Node) -> str:
    if node.type == "shorthand_property_identifier_pattern":
        return ctx.text(node)
    if node.type == "pair_pattern":
        key = node.child_by_field_name("key")
        return ctx.text(key) if key is not None else ""
    return ""


def _specifiers(ctx: RuleContext, node: Node, names: list[str], local: list[str]) -> bool:
    aliased = False
    for spec in node.named_children:
        if spec.type not in ("import_specifier", "export_specifier"):
            continue
        n = spec.child_by_field_name("name")
        a = spec.child_by_field_name("alias")
        if n is None:
            continue
        names.append(string_content(ctx, n) if n.type == "string" else ctx.text(n))
        if a is not None:
            local.append(ctx.text(a))
            aliased = True
        else:
            local.append(names[-1])
    return aliased


_JS_PROBE = (".ts", ".tsx", ".d.ts", ".js", ".jsx", ".mjs", ".cjs", ".mts", ".cts")
_JS_RUNTIME_TO_SOURCE = {
    ".js": (".ts", ".tsx", ".d.ts"),
    ".jsx": (".tsx",),
    ".mjs": (".mts",),
    ".cjs": (".cts",),
}


class ScriptResolver(Resolver):
    """Resolution for JavaScript, TypeScript and TSX alike (one instance: one cache of
    tsconfig files and workspace packages)."""

    def __init__(self, host: ResolveHost) -> None:
        super().__init__(host)
        self._tsconfigs: dict[str, dict[str, object] | None] = {}
        self._packages: dict[str, str] | None = None

    def reset(self, project_files_changed: bool) -> None:
        if project_files_changed:
            self._tsconfigs.clear()
            self._packages = None

    def resolve(self, from_path: str, imp: Import) -> list[str]:
        spec = imp.module.split("?", 1)[0]
        language = "typescript"
        targets: list[str] = []
        if spec.startswith(("./", "../")) or spec in (".", ".."):
            found = self._js_probe(os.path.normpath(os.path.join(os.path.dirname(from_path), spec)))
            if found:
                targets.append(found)
        elif not spec.startswith(("node:", "http:", "https:")):
            targets.extend(self._js_alias(from_path, spec))
        if not targets:
            return []
        out: list[str] = []
        for target in targets:
            out.extend(self.host.with_names(target, imp, language))
        return out

    def _js_probe(self, base: str) -> str | None:
        has = self.view.has_file
        root, ext = os.path.splitext(base)
        if ext in _JS_RUNTIME_TO_SOURCE:
            for alt in _JS_RUNTIME_TO_SOURCE[ext]:
                if has(root + alt):
                    return root + alt
        if ext and has(base):
            return base
        for ext in _JS_PROBE:
            if has(base + ext):
                return base + ext
        for ext in _JS_PROBE:
            candidate = os.path.join(base, "index" + ext)
            if has(candidate):
                return candidate
        return None

    def _js_alias(self, from_path: str, spec: str) -> list[str]:
        config = self._tsconfig_for(os.path.dirname(from_path))
        if config is not None:
            base_url = config.get("baseUrl")
            paths = config.get("paths") or {}
            paths_base = config.get("pathsBase") or base_url
            if isinstance(paths, dict) and isinstance(paths_base, str):
                best: tuple[int, list[str]] | None = None
                for pattern, replacements in paths.items():
                    if not isinstance(replacements, list):
                        continue
                    star = _match_star(pattern, spec)
                    if star is None:
                        continue
                    # The longest prefix wins, as in TypeScript.
                    weight = len(pattern.split("*", 1)[0])
                    if best is None or weight > best[0]:
                        best = (
                            weight,
                            [
                                os.path.normpath(
                                    os.path.join(paths_base, str(r).replace("*", star))
                                )
                                for r in replacements
                            ],
                        )
                if best is not None:
                    for candidate in best[1]:
                        found = self._js_probe(candidate)
                        if found:
                            return [found]
            if isinstance(base_url, str):
                found = self._js_probe(os.path.normpath(os.path.join(base_url, spec)))
                if found:
                    return [found]
        # A package of the workspace (monorepo) by its package.json name.
        packages = self._workspace_packages()
        name = spec
        while name:
            folder = packages.get(name)
            if folder is not None:
                rest = spec[len(name) :].lstrip("/")
                for candidate in (
                    [os.path.join(folder, rest)]
                    if rest
                    else [*self._package_entries(folder), os.path.join(folder, "src"), folder]
                ):
                    found = self._js_probe(candidate)
                    if found:
                        return [found]
                break
            if "/" not in name:
                break
            name = name.rsplit("/", 1)[0]
        return []

    def _tsconfig_for(self, folder: str) -> dict[str, object] | None:
        """compilerOptions (absolute baseUrl/pathsBase) of the nearest tsconfig/jsconfig."""
        root = self.view.root_of(folder) or folder
        current = folder
        configs = set(self.view.project_files())
        while True:
            for name in ("tsconfig.json", "jsconfig.json"):
                candidate = os.path.join(current, name)
                if candidate in configs:
                    return self._tsconfig(candidate)
            if current == root or os.path.dirname(current) == current:
                return None
            current = os.path.dirname(current)

    def _tsconfig(self, path: str, depth: int = 0) -> dict[str, object] | None:
        if path in self._tsconfigs:
            return self._tsconfigs[path]
        options: dict[str, object] = {}
        data = self.host.read_jsonc(path)
        if data is not None:
            parent = data.get("extends")
            for ref in parent if isinstance(parent, list) else [parent]:
                if isinstance(ref, str) and ref.startswith(".") and depth < 5:
                    ref_path = os.path.normpath(os.path.join(os.path.dirname(path), ref))
                    if not ref_path.endswith(".json"):
                        ref_path += ".json"
                    inherited = self._tsconfig(ref_path, depth + 1)
                    if inherited:
                        options.update(inherited)
            compiler = data.get("compilerOptions")
            if isinstance(compiler, dict):
                folder = os.path.dirname(path)
                if isinstance(compiler.get("baseUrl"), str):
                    options["baseUrl"] = os.path.normpath(os.path.join(folder, compiler["baseUrl"]))
                if isinstance(compiler.get("paths"), dict):
                    options["paths"] = compiler["paths"]
                    # Without baseUrl, paths are relative to the config that sets them.
                    options["pathsBase"] = options.get("baseUrl") or folder
        self._tsconfigs[path] = options
        return options

    def _workspace_packages(self) -> dict[str, str]:
        packages = self._packages
        if packages is None:
            packages = {}
            for path in self.view.project_files():
                if os.path.basename(path) == "package.json":
                    data = self.host.read_jsonc(path)
                    name = data.get("name") if data else None
                    if isinstance(name, str) and name not in packages:
                        packages[name] = os.path.dirname(path)
            self._packages = packages
        return packages

    def _package_entries(self, folder: str) -> list[str]:
        data = self.host.read_jsonc(os.path.join(folder, "package.json")) or {}
        out = []
        for key in ("source", "types", "typings", "module", "main"):
            value = data.get(key)
            if isinstance(value, str):
                out.append(os.path.normpath(os.path.join(folder, value)))
        return out


def _match_star(pattern: str, spec: str) -> str | None:
    """What ``*`` stands for when ``spec`` matches a tsconfig ``paths`` pattern."""
    if "*" not in pattern:
        return "" if pattern == spec else None
    prefix, _, suffix = pattern.partition("*")
    if spec.startswith(prefix) and spec.endswith(suffix) and len(spec) >= len(prefix) + len(suffix):
        return spec[len(prefix) : len(spec) - len(suffix)]
    return None


class ScriptRetrieval(Retrieval):
    """Names come through imports; an `index.js` re-exports (JavaScript and
    TypeScript)."""

    names_need_imports = True
    reexports = True


SPECS = (
    LanguageSpec(
        "javascript",
        (".js", ".jsx", ".mjs", ".cjs"),
        _grammar,
        QUERY,
        words(KEYWORDS_TEXT),
        WORDS,
        IMPORT_HINTS,
        IMPORT_NODE_TYPES,
        rules=ScriptRules,
        resolver=ScriptResolver,
        retrieval=ScriptRetrieval,
        project_files=PROJECT_FILES,
        editor_ids=("javascript", "javascriptreact"),
        generated=(".min.js", ".min.mjs", ".bundle.js"),
    ),
)
