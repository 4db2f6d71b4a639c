"""Rust: definitions, imports (``use``, ``mod``, ``extern crate``) and import resolution.

Resolution: ``mod foo;`` -> ``foo.rs`` / ``foo/mod.rs`` next to the module's file
(a crate root's: ``lib.rs``, ``main.rs``, ``src/bin/*.rs`` and the files of a crate's
``tests/``, ``examples/``, ``benches/``; ``mod a { mod b; }`` -> ``a/b.rs``);
``include!("x.rs")`` -> ``x.rs`` beside the file, its items as the file's;
``use crate::``/``self::``/``super::`` paths walked module by module (an inline
module's folder too); other crates of the workspace by their ``Cargo.toml`` package
name; an item imported by name is followed through ``pub use`` re-exports (globs too)
to the file that defines it. Items are exported when ``pub`` (and the items of a trait
or a trait's impl are as visible as the trait); a ``macro_rules!`` macro when
``#[macro_export]``. Macros are otherwise seen by textual scope
(``RustRetrieval.names_in_scope``): ``#[macro_use] mod m;`` is read as a ``mod`` of
kind ``macro_use``.
"""

from __future__ import annotations

import os
import re
import threading
from collections.abc import Iterable
from typing import Any

from tree_sitter import Node

from context.lang import (
    FillSource,
    LanguageSpec,
    ResolveHost,
    Resolver,
    Retrieval,
    RetrievalHost,
    words,
)
from context.rules import Enclosing, RawImport, RuleContext, Rules, first_named
from context.types import Definition, FileSymbols, Import


def _grammar() -> Any:
    import tree_sitter_rust

    return tree_sitter_rust.language()


QUERY = r"""
(function_item (visibility_modifier)? @vis name: (identifier) @name body: (block) @body)
  @def.function
(function_signature_item (visibility_modifier)? @vis name: (identifier) @name) @def.function
(struct_item (visibility_modifier)? @vis name: (type_identifier) @name body: (_)? @body)
  @def.struct
(union_item (visibility_modifier)? @vis name: (type_identifier) @name body: (_)? @body)
  @def.struct
(enum_item (visibility_modifier)? @vis name: (type_identifier) @name body: (_) @body) @def.enum
(trait_item (visibility_modifier)? @vis name: (type_identifier) @name
  bounds: (trait_bounds)? @heritage body: (_) @body) @def.trait
(impl_item trait: (_)? @heritage type: [
    (type_identifier) @name
    (generic_type type: (type_identifier) @name)
    (scoped_type_identifier name: (type_identifier) @name)
    (generic_type type: (scoped_type_identifier name: (type_identifier) @name))]
  body: (_) @body) @def.impl
(type_item (visibility_modifier)? @vis name: (type_identifier) @name) @def.type
(const_item (visibility_modifier)? @vis name: (identifier) @name) @def.constant
(static_item (visibility_modifier)? @vis name: (identifier) @name) @def.constant
(mod_item (visibility_modifier)? @vis name: (identifier) @name body: (declaration_list) @body)
  @def.module
(macro_definition name: (identifier) @name) @def.function
(use_declaration) @import
(mod_item !body) @import
(expression_statement
  (macro_invocation macro: (identifier) @name (#eq? @name "include"))) @import
(extern_crate_declaration) @import
(line_comment) @comment
(block_comment) @comment
(attribute_item) @attr
(macro_invocation (token_tree) @expand)
"""

KEYWORDS = words(
    """as async await break const continue crate dyn else enum extern false fn for
if impl in let loop match mod move mut pub ref return self Self static struct super trait true
type unsafe use where while"""
)


class RustRules(Rules):
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
        if node.type == "macro_definition":
            # `#[macro_export]` puts a macro at the crate root, for other crates too;
            # the others are seen only where their textual scope reaches.
            return _has_attribute(node, b"macro_export")
        if "vis" in caps or node.type == "impl_item":
            return True
        # Items of a trait, and of a trait's impl, are as visible as the trait.
        return enclosing is not None and (enclosing[1] == "trait" or bool(enclosing[4]))

    @classmethod
    def imports(cls, ctx: RuleContext, node: Node) -> Iterable[RawImport]:
        line = node.start_point.row
        if node.type == "mod_item":
            mod_name = node.child_by_field_name("name")
            if mod_name is not None:
                # Inside `mod support { pub mod signal; }` the file is `support/signal.rs`.
                module = "::".join([*_inline_modules(node), ctx.text(mod_name)])
                # `#[macro_use] mod macros;`: its macros stay in scope after it.
                kind = "macro_use" if _has_attribute(node, b"macro_use") else "mod"
                yield (module, (), "", line, (), kind)
            return
        if node.type == "expression_statement":
            # `include!("macros.rs");`: the file's text pasted here, its items with it.
            for string in _descendants(node, "string_content", 4):
                yield (ctx.text(string), ("*",), "", line, (), "include")
                return
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
        inline = _inline_modules(node)
        for module, alias in whole:
            module = _from_inline(module, inline)
            yield (module, (), alias if alias != module else "", line, (), "use")
        for module, (names, local) in grouped.items():
            module = _from_inline(module, inline)
            yield (module, tuple(names), "", line, tuple(local) if local != names else (), "use")


def _has_attribute(node: Node, name: bytes) -> bool:
    """Whether an outer attribute `#[name]` (or `#[name(...)]`) is on the item."""
    sibling = node.prev_named_sibling
    while sibling is not None and sibling.type in (
        "attribute_item",
        "line_comment",
        "block_comment",
    ):
        if sibling.type == "attribute_item":
            attribute = first_named(sibling)
            ident = first_named(attribute)
            if ident is not None and ident.type == "identifier" and ident.text == name:
                return True
        sibling = sibling.prev_named_sibling
    return False


def _descendants(node: Node, node_type: str, depth: int) -> Iterable[Node]:
    for child in node.named_children:
        if child.type == node_type:
            yield child
        elif depth > 1:
            yield from _descendants(child, node_type, depth - 1)


def _inline_modules(node: Node) -> list[str]:
    """The inline `mod name { }` blocks around a node, outermost first."""
    out: list[str] = []
    parent = node.parent
    while parent is not None:
        if parent.type == "mod_item":
            name = parent.child_by_field_name("name")
            if name is not None and name.text is not None:
                out.append(name.text.decode("utf-8", "replace"))
        parent = parent.parent
    out.reverse()
    return out


def _from_inline(module: str, inline: list[str]) -> str:
    """A `use` path written inside inline modules, as seen from the file's own module:
    `super::x` in `mod unix { }` is `self::x`; `self::y` there is `self::unix::y`."""
    if not inline:
        return module
    segments = module.split("::")
    depth = len(inline)
    while segments and segments[0] == "super" and depth:
        segments.pop(0)
        depth -= 1
    if segments and segments[0] == "self":
        segments.pop(0)
    elif len(segments) == len(module.split("::")):
        return module  # `crate::`, another crate, a name in scope: not relative
    return (
        "::".join(["self", *inline[:depth], *segments])
        if depth
        else "::".join(["self", *segments] if segments and segments[0] != "super" else segments)
    )


# The standard library's crates: always external.
_STANDARD = frozenset({"std", "core", "alloc"})
# `mod x;` and `#[macro_use] mod x;` declare a module the same way.
MOD_KINDS = frozenset({"mod", "macro_use"})
# Not an import written in code: resolving it gives the file whose `mod` declares the
# importing file (memoised with the imports; see `RustRetrieval.names_in_scope`).
PARENT = "declared by"
# Folders of a crate whose files are crates of their own (Cargo's targets).
CRATE_ROOT_DIRS = frozenset({"tests", "examples", "benches"})

_PATH = re.compile(r"\b[A-Za-z_]\w*(?:::[A-Za-z_]\w*)+")


def _flatten_use(
    ctx: RuleContext, node: Node, prefix: str, out: list[tuple[str, str, str]]
) -> None:
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
        path = first_named(node)
        out.append((join(prefix, ctx.text(path)) if path is not None else prefix, "*", ""))


class RustResolver(Resolver):
    # `mod foo;` is found next to the module's own file, not its folder.
    per_file = True

    def __init__(self, host: ResolveHost) -> None:
        super().__init__(host)
        self._crates: dict[str, str] | None = None

    def reset(self, project_files_changed: bool) -> None:
        if project_files_changed:
            self._crates = None

    def resolve(self, from_path: str, imp: Import) -> list[str]:
        if imp.kind in MOD_KINDS:
            folder = _rust_child_dir(from_path, self._rust_crate_src(from_path))
            base = os.path.join(folder, *imp.module.split("::"))
            for candidate in (base + ".rs", os.path.join(base, "mod.rs")):
                if self.view.has_file(candidate):
                    return [candidate]
            return []
        if imp.kind == "include":
            candidate = os.path.normpath(os.path.join(os.path.dirname(from_path), imp.module))
            return [candidate] if self.view.has_file(candidate) else []
        if imp.kind == PARENT:
            parent = self._declared_by(from_path)
            return [parent] if parent else []
        segments = [s for s in imp.module.split("::") if s] if imp.module else []
        if not segments:
            return []
        located = self._rust_path(from_path, segments)
        if located is None:
            return []
        current, folder, consumed_all = located
        if not imp.names:
            return [current]
        out: list[str] = []
        for name in imp.names:
            sub = (
                self._rust_child(folder, name)
                if consumed_all and name not in ("*", "self")
                else None
            )
            if sub:
                out.append(sub[0])
            elif name in ("*", "self"):
                out.append(current)
            else:
                # `pub use` chains (`tokio::spawn` is `task::spawn`, re-exported from
                # its own module, globs too): the file that defines the item.
                out.extend(self.host.follow(current, name, "rust"))
        return out

    def _rust_crate_src(self, path: str) -> str | None:
        """The ``src`` folder of the crate holding ``path``."""
        root = self.view.root_of(path)
        current = os.path.dirname(path)
        configs = set(self.view.project_files())
        while True:
            if os.path.join(current, "Cargo.toml") in configs:
                return os.path.join(current, "src")
            if current == root or os.path.dirname(current) == current:
                return None
            current = os.path.dirname(current)

    def _rust_crate_root(self, src: str) -> str | None:
        for name in ("lib.rs", "main.rs"):
            if self.view.has_file(os.path.join(src, name)):
                return os.path.join(src, name)
        return None

    def _rust_child(self, folder: str, name: str) -> tuple[str, str] | None:
        for candidate in (os.path.join(folder, name + ".rs"), os.path.join(folder, name, "mod.rs")):
            if self.view.has_file(candidate):
                return candidate, os.path.join(folder, name)
        return None

    def _rust_path(self, from_path: str, segments: list[str]) -> tuple[str, str, bool] | None:
        """(file, its child-module folder, whether every segment was a module file)."""
        src = self._rust_crate_src(from_path)
        first = segments[0]
        starts: list[tuple[str, str]] = []
        if first == "crate":
            crate_root = self._rust_crate_root(src) if src else None
            if crate_root is None or src is None:
                return None
            starts.append((crate_root, src))
            segments = segments[1:]
        elif first in ("self", "super"):
            current, folder = from_path, _rust_child_dir(from_path, src)
            while segments and segments[0] in ("self", "super"):
                if segments[0] == "super":
                    current, folder = self._rust_parent(current, src)
                segments = segments[1:]
            starts.append((current, folder))
        else:
            crates = self._workspace_crates()
            crate_src = crates.get(first)
            if crate_src is not None:
                crate_root = self._rust_crate_root(crate_src)
                if crate_root:
                    starts.append((crate_root, crate_src))
                    segments = segments[1:]
            if not starts:
                # 2018 paths: a module in scope, relative to this module or the crate root.
                starts.append((from_path, _rust_child_dir(from_path, src)))
                crate_root = self._rust_crate_root(src) if src else None
                if crate_root and src:
                    starts.append((crate_root, src))
                for current, folder in starts:
                    if self._rust_child(folder, first) is not None or self.view.has_dir(
                        os.path.join(folder, first)
                    ):
                        return self._rust_walk(current, folder, segments)
                return None
        current, folder = starts[0]
        return self._rust_walk(current, folder, segments)

    def _rust_walk(self, current: str, folder: str, segments: list[str]) -> tuple[str, str, bool]:
        for seg in segments:
            child = self._rust_child(folder, seg)
            if child is None:
                inline = os.path.join(folder, seg)
                if self.view.has_dir(inline):
                    # An inline `mod support { pub mod signal; }`: its modules' files
                    # are in `support/`, its items in `current`.
                    folder = inline
                    continue
                return current, folder, False  # an item or inline module of `current`
            current, folder = child
        return current, folder, True

    def _declared_by(self, path: str) -> str | None:
        """The file whose `mod name;` declares the module in `path` (None for a crate
        root): `mod.rs` or `name.rs` of the folder above, the crate root, or, in a
        crate's `tests/` (`examples/`, `benches/`), a file beside it that declares it."""
        base = os.path.basename(path)
        folder = os.path.dirname(path)
        if base in ("lib.rs", "main.rs") or not base.endswith(".rs"):
            return None
        if base == "mod.rs":
            name, folder = os.path.basename(folder), os.path.dirname(folder)
        else:
            name = base[:-3]
        candidates = [
            os.path.join(folder, "mod.rs"),
            folder + ".rs",
            os.path.join(folder, "lib.rs"),
            os.path.join(folder, "main.rs"),
        ]
        if os.path.basename(folder) in CRATE_ROOT_DIRS:
            candidates.extend(p for p in self.view.files_in_dir(folder) if p.endswith(".rs"))
        for candidate in candidates:
            if candidate == path:
                continue
            summary = self.view.summary(candidate)
            if summary is None:
                continue
            for imp in summary.imports:
                if (
                    imp.kind in MOD_KINDS
                    and imp.module.rsplit("::", 1)[-1] == name
                    and path in self.resolve(candidate, imp)
                ):
                    return candidate
        return None

    def _rust_parent(self, path: str, src: str | None) -> tuple[str, str]:
        base = os.path.basename(path)
        own_dir = os.path.dirname(path)
        if base in ("mod.rs", "lib.rs", "main.rs"):
            parent_dir = os.path.dirname(own_dir)
            if base != "mod.rs":  # the crate root has no parent
                return path, own_dir
        else:
            parent_dir = own_dir
        if src is not None and parent_dir == src:
            root = self._rust_crate_root(src)
            return (root or path), src
        for candidate in (parent_dir + ".rs", os.path.join(parent_dir, "mod.rs")):
            if self.view.has_file(candidate):
                return candidate, parent_dir
        return path, parent_dir

    def _workspace_crates(self) -> dict[str, str]:
        crates = self._crates
        if crates is None:
            crates = {}
            for path in self.view.project_files():
                if os.path.basename(path) != "Cargo.toml":
                    continue
                text = self.host.read_text(path)
                if text is None:
                    continue
                section = re.search(r"(?ms)^\[package\](.*?)(?=^\[|\Z)", text)
                name = (
                    re.search(r'(?m)^\s*name\s*=\s*"([^"]+)"', section.group(1))
                    if section
                    else None
                )
                if name:
                    crates[name.group(1).replace("-", "_")] = os.path.join(
                        os.path.dirname(path), "src"
                    )
            self._crates = crates
        return crates


def _rust_child_dir(path: str, src: str | None) -> str:
    """The folder where the submodules of the module in ``path`` live."""
    base = os.path.basename(path)
    folder = os.path.dirname(path)
    if base in ("mod.rs", "lib.rs", "main.rs") or (
        src is not None
        and (
            folder == os.path.join(src, "bin")
            # `tests/x.rs`, `examples/x.rs`, `benches/x.rs` are crate roots too.
            or os.path.dirname(folder) == os.path.dirname(src)
            and os.path.basename(folder) in CRATE_ROOT_DIRS
        )
    ):
        return folder
    return os.path.join(folder, base[:-3] if base.endswith(".rs") else base)


class RustRetrieval(Retrieval):
    """Paths in code (`crate::util::say`, `super::Outcome`, `other_crate::Type::new`)
    resolve like a `use`; `pub use` re-exports. Tests, examples and benches of a crate
    use it as a whole, by its name: its root and the modules the root declares are in
    scope, as a package imported whole."""

    reexports = True

    @classmethod
    def submodule(cls, imp: Import, name: str) -> Import | None:
        """`use crate::runtime::context;` binds the module `context` (its file defines no
        item of that name): `context::current_task_id()` goes through it."""
        if name in ("*", "self") or imp.kind != "use":
            return None
        return Import(f"{imp.module}::{name}" if imp.module else name, kind="use")

    @classmethod
    def external_names(cls, fs: FileSymbols) -> frozenset[str]:
        """What `use std::…`, `use core::…` and `use alloc::…` bind: the standard
        library is never a crate of the workspace (`use std::io::{self, Read}` binds
        `io` and `Read`; tokio's own `Read` future is not that `Read`)."""
        out: set[str] = set()
        for imp in fs.imports:
            if imp.kind != "use" or imp.module.split("::", 1)[0] not in _STANDARD:
                continue
            if imp.alias:
                out.add(imp.alias)
            names = imp.local_names or imp.names
            out.update(n for n in names if n not in ("*", "self"))
            if not imp.names or "self" in imp.names:
                out.add(imp.module.rsplit("::", 1)[-1])
        return frozenset(out)

    @classmethod
    def code_paths(cls, line: str) -> list[list[str]]:
        if "::" not in line or line.lstrip().startswith(("use ", "pub use ")):
            return []  # imports are resolved as such
        return [path.split("::") for path in _PATH.findall(line)]

    @classmethod
    def path_import(cls, segments: list[str]) -> Import:
        return Import("::".join(segments), kind="use")

    MAX_MODULES = 40

    @classmethod
    def fill_sources(cls, host: RetrievalHost, fs: FileSymbols) -> list[FillSource]:
        root = cls.crate_root(host, host.path)
        if root is None:
            return []
        out = [FillSource("the crate", (root,))]
        symbols = host.file(root)
        if symbols is not None:
            modules: list[str] = []
            for imp in symbols.imports:
                if imp.kind in MOD_KINDS and len(modules) < cls.MAX_MODULES:
                    modules.extend(f for f in host.resolve(root, imp) if f not in modules)
            if modules:
                out.append(FillSource("a module of the crate", tuple(modules)))
        return out

    @classmethod
    def names_in_scope(cls, host: RetrievalHost, fs: FileSymbols) -> dict[str, list[Definition]]:
        """The `macro_rules!` macros in the file's textual scope, which nothing imports:
        those its parent modules define above its `mod` line, with what the
        `#[macro_use] mod`s and `include!`s above it bring (their own, and in turn
        theirs). Kept per file while the files it read are unchanged."""
        path = host.path
        with _SCOPE_LOCK:
            cached = _SCOPE_CACHE.get(path)
        if cached is not None and all(host.file(p) is s for p, s in cached[0]):
            return cached[1]
        scope = _MacroScope(host)
        scope.of_module(path, 0)
        root = cls.crate_root(host, path)
        if root is not None:
            # A test, example or bench uses its crate from outside: the crate's
            # `#[macro_export]` macros are at its root (`tokio::task_local!`), wherever
            # in the crate they are defined.
            read, exported = _exported_macros(host, root)
            scope.read.update(read)  # the scope is kept while these are unchanged too
            for name, found in exported.items():
                scope.found.setdefault(name, found)
        with _SCOPE_LOCK:
            _SCOPE_CACHE[path] = (tuple(scope.read.items()), scope.found)
            while len(_SCOPE_CACHE) > 32:
                _SCOPE_CACHE.pop(next(iter(_SCOPE_CACHE)))
        return scope.found

    @staticmethod
    def crate_root(host: RetrievalHost, path: str) -> str | None:
        """The `src/lib.rs` of the crate whose `tests/`, `examples/` or `benches/` hold
        `path` (None elsewhere)."""
        parts = path.split(os.sep)
        for i in range(len(parts) - 1, 0, -1):
            if parts[i] in ("tests", "examples", "benches"):
                lib = os.sep.join([*parts[:i], "src", "lib.rs"])
                return lib if host.file(lib) is not None else None
        return None


# The macros in scope of the last files asked about: (the files read and their symbols
# then, the macros by name).
_SCOPE_CACHE: dict[
    str, tuple[tuple[tuple[str, FileSymbols | None], ...], dict[str, list[Definition]]]
] = {}
_SCOPE_LOCK = threading.Lock()


class _MacroScope:
    """Walks up the modules above a file for the macros in its textual scope."""

    MAX_FILES = 64  # files read for one scope (a bound on the work of one request)
    MAX_DEPTH = 16

    def __init__(self, host: RetrievalHost) -> None:
        self.host = host
        self.read: dict[str, FileSymbols | None] = {}
        self.found: dict[str, list[Definition]] = {}
        self.brought: set[str] = set()

    def symbols(self, path: str) -> FileSymbols | None:
        if path not in self.read:
            self.read[path] = self.host.file(path)
        return self.read[path]

    def of_module(self, path: str, depth: int) -> None:
        """What the module in `path` sees from the modules above it."""
        parents = self.host.resolve(path, Import("", kind=PARENT))
        if not parents or depth > self.MAX_DEPTH:
            return
        parent = parents[0]
        symbols = self.symbols(parent)
        if symbols is None:
            return
        line = next(
            (
                imp.line
                for imp in symbols.imports
                if imp.kind in MOD_KINDS and path in self.host.resolve(parent, imp)
            ),
            None,
        )
        if line is None:
            return
        self.of_module(parent, depth + 1)
        self.defined_in(parent, symbols, line)

    def defined_in(self, path: str, symbols: FileSymbols, before: int) -> None:
        """The macros `path` defines above line `before`, and those its `#[macro_use]`
        modules and `include!`s bring, in the order written (a later one shadows)."""
        lines: list[str] | None = None
        events: list[tuple[int, Definition | Import]] = []
        for d in symbols.definitions:
            if d.start_line < before and d.kind == "function" and not d.parent:
                if lines is None:
                    lines = self.host.file_lines(path) or []
                if d.start_line < len(lines) and lines[d.start_line].lstrip().startswith(
                    "macro_rules!"
                ):
                    events.append((d.start_line, d))
        events.extend(
            (imp.line, imp)
            for imp in symbols.imports
            if imp.line < before and imp.kind in _BRINGS_MACROS
        )
        events.sort(key=lambda e: e[0])
        for _, what in events:
            if isinstance(what, Definition):
                self.found[what.name] = [what]
                continue
            for target in self.host.resolve(path, what):
                if target in self.brought or len(self.read) >= self.MAX_FILES:
                    continue
                self.brought.add(target)
                inner = self.symbols(target)
                if inner is not None:
                    self.defined_in(target, inner, 1 << 30)


# The `#[macro_export]` macros of the last crates asked about, by crate root: (the files
# read and their symbols then, the macros by name).
_EXPORTED_CACHE: dict[
    str, tuple[tuple[tuple[str, FileSymbols | None], ...], dict[str, list[Definition]]]
] = {}
MAX_CRATE_FILES = 1024  # modules read for a crate's exported macros


def _exported_macros(
    host: RetrievalHost, root: str
) -> tuple[tuple[tuple[str, FileSymbols | None], ...], dict[str, list[Definition]]]:
    """The `#[macro_export]` macros of the crate whose root is `root`: those of every
    module its `mod` lines reach (kept while none of those files changes)."""
    with _SCOPE_LOCK:
        cached = _EXPORTED_CACHE.get(root)
    if cached is not None and all(host.file(p) is s for p, s in cached[0]):
        return cached
    read: dict[str, FileSymbols | None] = {}
    found: dict[str, list[Definition]] = {}
    todo = [root]
    while todo and len(read) < MAX_CRATE_FILES:
        path = todo.pop()
        if path in read:
            continue
        symbols = read[path] = host.file(path)
        if symbols is None:
            continue
        lines: list[str] | None = None
        for d in symbols.definitions:
            if d.kind != "function" or d.parent or not d.exported:
                continue
            if lines is None:
                lines = host.file_lines(path) or []
            if d.start_line < len(lines) and lines[d.start_line].lstrip().startswith(
                "macro_rules!"
            ):
                found.setdefault(d.name, []).append(d)
        for imp in symbols.imports:
            if imp.kind in MOD_KINDS:
                todo.extend(f for f in host.resolve(path, imp) if f not in read)
    # Kept while the files that declare modules or define the macros are unchanged (a
    # check of every module on each request cost 0.4 ms in tokio's tests): a macro
    # newly exported from a file without one is seen after the next `mod` line edit.
    keep = {d.path for defs in found.values() for d in defs}
    kept = tuple(
        (p, s)
        for p, s in read.items()
        if s is None or p in keep or any(imp.kind in MOD_KINDS for imp in s.imports)
    )
    out = (kept, found)
    with _SCOPE_LOCK:
        _EXPORTED_CACHE[root] = out
        while len(_EXPORTED_CACHE) > 8:
            _EXPORTED_CACHE.pop(next(iter(_EXPORTED_CACHE)))
    return out


# What brings a module's macros into the scope after it: `#[macro_use] mod m;` and
# `include!("m.rs")`.
_BRINGS_MACROS = frozenset({"macro_use", "include"})


SPECS = (
    LanguageSpec(
        "rust",
        (".rs",),
        _grammar,
        QUERY,
        KEYWORDS,
        rules=RustRules,
        resolver=RustResolver,
        retrieval=RustRetrieval,
        project_files=("Cargo.toml",),
        editor_ids=("rust",),
    ),
)
