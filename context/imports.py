"""Resolve an import to the workspace files it refers to.

Resolution works on the index's in-memory view of the workspace (which files exist,
their symbols, the project files found by the walk) and never touches the disk except
to read small project files (``go.mod``, ``tsconfig.json``, ``package.json``,
``Cargo.toml``), which are cached until the index says they changed (``reset``).

Per language:

- Python: relative (``from . import x``, ``from ..a import b``) and absolute imports,
  searched from the source root of the importing file (the folder above its top-level
  package), from every source root that holds a top-level package of that name
  (monorepos, ``src/`` layouts), then from the workspace root and ``root/src``.
  ``from pkg import Name``: a submodule ``pkg/Name.py`` if there is one, else
  ``pkg/__init__.py``, following re-exports (``from .impl import Name``, ``*``) a few
  levels to the file that defines ``Name``.
- TypeScript/JavaScript: relative specifiers with extension probing (``.ts .tsx .d.ts
  .js .jsx .mjs .cjs``, ``./x.js`` written for ``x.ts``) and ``index`` files;
  ``tsconfig.json``/``jsconfig.json`` ``compilerOptions.paths`` and ``baseUrl`` (comments
  and trailing commas tolerated, ``extends`` followed); workspace packages by their
  ``package.json`` name; re-exports followed like Python's.
- Go: the module path from each ``go.mod`` in the workspace; an import path maps to a
  package folder, i.e. all its ``.go`` files except ``_test.go``.
- Rust: ``mod foo;`` -> ``foo.rs`` / ``foo/mod.rs`` next to the module's file;
  ``use crate::``/``self::``/``super::`` paths walked module by module; other crates of
  the workspace by their ``Cargo.toml`` package name.
- Java: package path + class name, matched against the end of indexed paths.
- C/C++: ``#include "x.h"`` relative to the including file, its folders up to the root,
  ``include/`` and ``src/``, then any indexed file whose path ends with it.
- Lua: ``require("a.b")`` -> ``a/b.lua`` or ``a/b/init.lua`` under the root, ``lua/``,
  ``src/`` or any indexed path ending so.
"""

from __future__ import annotations

import json
import logging
import os
import re
import threading
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

from context.types import Import
from context.walk import read_text

log = logging.getLogger(__name__)

# How many re-export hops to follow from a package/index file to the defining file.
MAX_REEXPORT_DEPTH = 4

_PY_EXTS = (".py", ".pyi")
_JS_PROBE = (".ts", ".tsx", ".d.ts", ".js", ".jsx", ".mjs", ".cjs", ".mts", ".cts")
_JS_RUNTIME_TO_SOURCE = {
    ".js": (".ts", ".tsx", ".d.ts"),
    ".jsx": (".tsx",),
    ".mjs": (".mts",),
    ".cjs": (".cts",),
}


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
    """Resolves imports against a ``WorkspaceView``; caches parsed project files."""

    def __init__(self, view: WorkspaceView) -> None:
        self.view = view
        self._lock = threading.Lock()
        self._go_modules: list[tuple[str, str]] | None = None
        self._tsconfigs: dict[str, dict[str, object] | None] = {}
        self._packages: dict[str, str] | None = None
        self._crates: dict[str, str] | None = None
        self._py_roots: dict[str, str] = {}
        self._py_top: dict[str, list[str]] | None = None
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
            self._py_roots.clear()
            self._py_top = None
            if project_files_changed:
                self._go_modules = None
                self._tsconfigs.clear()
                self._packages = None
                self._crates = None

    def resolve(self, from_path: str, imp: Import, language: str) -> list[str]:
        """The workspace files ``imp`` (found in ``from_path``) refers to, best first."""
        # Rust resolves against the file itself (`mod` folders), the others its folder.
        place = from_path if language == "rust" else os.path.dirname(from_path)
        key = (language, place, imp.module, imp.names, imp.kind)
        found = self._memo.get(key)
        if found is None:
            generation = self._generation
            found = self._resolve(from_path, imp, language)
            # A result found inside a re-export walk may be cut by its depth: not kept.
            inside_walk = getattr(self._walk, "seen", None) is not None
            if generation == self._generation and not inside_walk:
                if len(self._memo) > 200_000:
                    self._memo.clear()
                self._memo[key] = found
        return [p for p in found if p != from_path or imp.kind == "mod"]

    def _resolve(self, from_path: str, imp: Import, language: str) -> list[str]:
        try:
            if language == "python":
                out = self._python(from_path, imp)
            elif language in ("typescript", "tsx", "javascript"):
                out = self._js(from_path, imp)
            elif language == "go":
                out = self._go(imp)
            elif language == "rust":
                out = self._rust(from_path, imp)
            elif language == "java":
                out = self._java(from_path, imp)
            elif language in ("c", "cpp"):
                out = self._c(from_path, imp)
            elif language == "lua":
                out = self._lua(from_path, imp)
            else:
                out = []
        except (OSError, ValueError, RecursionError) as exc:
            log.debug("cannot resolve %r from %s: %s", imp.module, from_path, exc)
            return []
        return list(dict.fromkeys(out))

    # --- following re-exports (Python packages, TS index files) -------------------------

    def _follow(self, path: str, name: str, language: str) -> list[str]:
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

    def _with_names(self, target: str, imp: Import, language: str) -> list[str]:
        """The files defining each imported name, ``target`` for a whole-module import."""
        if not imp.names:
            return [target]
        out: list[str] = []
        for name in imp.names:
            out.extend(self._follow(target, name, language))
        return out

    # --- Python -----------------------------------------------------------------------

    def _python(self, from_path: str, imp: Import) -> list[str]:
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
                out.extend(self._follow(target, name, "python"))
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

    # --- TypeScript / JavaScript ---------------------------------------------------------

    def _js(self, from_path: str, imp: Import) -> list[str]:
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
            out.extend(self._with_names(target, imp, language))
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
        data = _read_jsonc(path)
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
                    data = _read_jsonc(path)
                    name = data.get("name") if data else None
                    if isinstance(name, str) and name not in packages:
                        packages[name] = os.path.dirname(path)
            self._packages = packages
        return packages

    def _package_entries(self, folder: str) -> list[str]:
        data = _read_jsonc(os.path.join(folder, "package.json")) or {}
        out = []
        for key in ("source", "types", "typings", "module", "main"):
            value = data.get(key)
            if isinstance(value, str):
                out.append(os.path.normpath(os.path.join(folder, value)))
        return out

    # --- Go ---------------------------------------------------------------------------

    def _go(self, imp: Import) -> list[str]:
        path = imp.module
        for module, folder in self._go_module_table():
            if path == module or path.startswith(module + "/"):
                target = (
                    os.path.join(folder, *path[len(module) :].strip("/").split("/"))
                    if path != module
                    else folder
                )
                return sorted(
                    f
                    for f in self.view.files_in_dir(target)
                    if f.endswith(".go") and not f.endswith("_test.go")
                )
        return []

    def _go_module_table(self) -> list[tuple[str, str]]:
        table = self._go_modules
        if table is None:
            table = []
            for path in self.view.project_files():
                if os.path.basename(path) != "go.mod":
                    continue
                text = read_text(path)
                match = re.search(r"(?m)^\s*module\s+(\S+)", text) if text else None
                if match:
                    table.append((match.group(1).strip('"'), os.path.dirname(path)))
            table.sort(key=lambda item: -len(item[0]))  # longest module path first
            self._go_modules = table
        return table

    # --- Rust -------------------------------------------------------------------------

    def _rust(self, from_path: str, imp: Import) -> list[str]:
        if imp.kind == "mod":
            folder = _rust_child_dir(from_path, self._rust_crate_src(from_path))
            for candidate in (
                os.path.join(folder, imp.module + ".rs"),
                os.path.join(folder, imp.module, "mod.rs"),
            ):
                if self.view.has_file(candidate):
                    return [candidate]
            return []
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
            out.append(sub[0] if sub else current)
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
                    if self._rust_child(folder, first) is not None:
                        return self._rust_walk(current, folder, segments)
                return None
        current, folder = starts[0]
        return self._rust_walk(current, folder, segments)

    def _rust_walk(self, current: str, folder: str, segments: list[str]) -> tuple[str, str, bool]:
        for seg in segments:
            child = self._rust_child(folder, seg)
            if child is None:
                return current, folder, False  # an item or inline module of `current`
            current, folder = child
        return current, folder, True

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
                text = read_text(path)
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

    # --- Java, C/C++, Lua: by path suffix ------------------------------------------------

    def _java(self, from_path: str, imp: Import) -> list[str]:
        parts = imp.module.split(".")
        out: list[str] = []
        for name in imp.names or ("",):
            if name == "*":
                suffix = os.sep + os.path.join(*parts)
                for folder in self.view.dirs_named(parts[-1]):
                    if folder.endswith(suffix):
                        out.extend(
                            sorted(f for f in self.view.files_in_dir(folder) if f.endswith(".java"))
                        )
                continue
            # `import a.b.C` -> a/b/C.java; `import static a.b.C.m` -> a/b/C.java.
            for candidate in ([*parts, name], parts):
                if not candidate or not candidate[-1]:
                    continue
                found = self._by_suffix(os.path.join(*candidate) + ".java", from_path)
                if found:
                    out.append(found)
                    break
        return out

    def _by_suffix(self, rel: str, near: str) -> str | None:
        """The indexed file whose path ends with ``rel``, nearest to ``near``."""
        suffix = os.sep + rel
        candidates = [p for p in self.view.files_named(os.path.basename(rel)) if p.endswith(suffix)]
        if not candidates:
            return None
        return max(candidates, key=lambda p: (len(os.path.commonpath([p, near])), -len(p)))

    def _c(self, from_path: str, imp: Import) -> list[str]:
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
        found = self._by_suffix(rel, from_path)
        return [found] if found else []

    def _lua(self, from_path: str, imp: Import) -> list[str]:
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
            found = self._by_suffix(candidate_rel, from_path)
            if found:
                return [found]
        return []


def _match_star(pattern: str, spec: str) -> str | None:
    """What ``*`` stands for when ``spec`` matches a tsconfig ``paths`` pattern."""
    if "*" not in pattern:
        return "" if pattern == spec else None
    prefix, _, suffix = pattern.partition("*")
    if spec.startswith(prefix) and spec.endswith(suffix) and len(spec) >= len(prefix) + len(suffix):
        return spec[len(prefix) : len(spec) - len(suffix)]
    return None


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


def _rust_child_dir(path: str, src: str | None) -> str:
    """The folder where the submodules of the module in ``path`` live."""
    base = os.path.basename(path)
    folder = os.path.dirname(path)
    if base in ("mod.rs", "lib.rs", "main.rs") or (
        src is not None and folder == os.path.join(src, "bin")
    ):
        return folder
    return os.path.join(folder, base[:-3] if base.endswith(".rs") else base)
