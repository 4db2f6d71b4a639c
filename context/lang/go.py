"""Go: definitions, imports and import resolution.

Resolution: the module path from each ``go.mod`` in the workspace; an import path maps
to a package folder, i.e. all its ``.go`` files except ``_test.go``. A name is exported
when it starts with a capital letter.
"""

from __future__ import annotations

import os
import re
import threading
from collections.abc import Iterable
from typing import Any

from tree_sitter import Node

from context.lang import (
    LanguageSpec,
    ResolveHost,
    Resolver,
    Retrieval,
    RetrievalHost,
    words,
)
from context.rules import Enclosing, RawImport, RuleContext, Rules, string_content
from context.types import Definition, FileSymbols, Import


def _grammar() -> Any:
    import tree_sitter_go

    return tree_sitter_go.language()


QUERY = r"""
(function_declaration name: (identifier) @name body: (block)? @body) @def.function
(method_declaration
  receiver: (parameter_list (parameter_declaration type: [
    (type_identifier) @parent
    (pointer_type (type_identifier) @parent)
    (generic_type type: (type_identifier) @parent)
    (pointer_type (generic_type type: (type_identifier) @parent))]))
  name: (field_identifier) @name body: (block)? @body) @def.method
(type_declaration (type_spec name: (type_identifier) @name type: (_) @value) @def.type)
(type_declaration (type_alias name: (type_identifier) @name) @def.type)
(source_file (const_declaration (const_spec name: (identifier) @name) @def.constant))
(source_file (var_declaration (var_spec name: (identifier) @name) @def.variable))
(import_declaration) @import
(comment) @comment
"""

KEYWORDS = words(
    """break case chan const continue default defer else fallthrough for func go goto
if import interface map package range return select struct switch type var nil true false iota
int string bool error byte rune"""
)


class GoRules(Rules):
    @classmethod
    def refine_kind(
        cls,
        ctx: RuleContext,
        kind: str,
        name: str,
        caps: dict[str, list[Node]],
    ) -> str | None:
        # The blank identifier (`var _ Collector = (*x)(nil)`) is no name code can use.
        if name == "_":
            return None
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
        ctx: RuleContext,
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
        ctx: RuleContext,
        node: Node,
        name: str,
        name_node: Node,
        caps: dict[str, list[Node]],
        enclosing: Enclosing | None,
        outer: Node | None,
    ) -> bool:
        return name[:1].isupper()

    @classmethod
    def imports(cls, ctx: RuleContext, node: Node) -> Iterable[RawImport]:
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
            alias = ctx.text(name) if name is not None else ""
            if alias == "_":
                continue  # imported for its side effects: binds no name
            yield (
                string_content(ctx, path),
                # `import . "pkg"`: its exported names are used bare, as a wildcard.
                ("*",) if alias == "." else (),
                "" if alias == "." else alias,
                spec.start_point.row,
                (),
                "",
            )


class GoResolver(Resolver):
    def __init__(self, host: ResolveHost) -> None:
        super().__init__(host)
        self._go_modules: list[tuple[str, str]] | None = None

    def reset(self, project_files_changed: bool) -> None:
        if project_files_changed:
            self._go_modules = None

    def resolve(self, from_path: str, imp: Import) -> list[str]:
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
                text = self.host.read_text(path)
                match = re.search(r"(?m)^\s*module\s+(\S+)", text) if text else None
                if match:
                    table.append((match.group(1).strip('"'), os.path.dirname(path)))
            table.sort(key=lambda item: -len(item[0]))  # longest module path first
            self._go_modules = table
        return table


class GoRetrieval(Retrieval):
    """A folder is a package; its test files are not part of the package the code
    builds. A bare name is the package's (or a dot import's): another package's names
    are always written `pkg.Name`."""

    package_folder = True
    bare_names_in_package = True

    @classmethod
    def in_package(cls, path: str, other: str) -> bool:
        return path.endswith("_test.go") or not other.endswith("_test.go")

    @classmethod
    def module_name(cls, host: RetrievalHost, imp: Import, files: list[str]) -> str:
        """The package clause of the imported package's files: the name `pkg.Name`
        uses, which need not be the folder's (`example.com/go-yaml` is `yaml`,
        `example.com/lib/v2` is `lib`)."""
        for path in files[:1]:
            fs = host.file(path)
            if fs is None:
                return ""
            with _PACKAGE_NAMES_LOCK:
                hit = _PACKAGE_NAMES.get(path)
            if hit is not None and hit[0] is fs:
                return hit[1]
            name = ""
            for line in (host.file_lines(path) or [])[:200]:
                match = _PACKAGE_CLAUSE.match(line)
                if match:
                    name = match.group(1)
                    break
            with _PACKAGE_NAMES_LOCK:
                _PACKAGE_NAMES[path] = (fs, name)  # `fs` keeps the identity check valid
                while len(_PACKAGE_NAMES) > 1024:
                    del _PACKAGE_NAMES[next(iter(_PACKAGE_NAMES))]
            return name
        return ""

    @classmethod
    def package_view(cls, path: str, found: list[Definition]) -> list[Definition]:
        """`init`, `main` and a test file's `TestX`, `BenchmarkX`, `ExampleX` and `FuzzX`
        functions are run, never called. Files of one package that define the same name are
        variants of which a build compiles one (`go_collector_go116.go` / `go_collector_latest.go`,
        `poll_linux.go` / `poll_windows.go`): the one whose file name is nearest the
        current file's (the most `_`-separated words in common, such as the `_linux`
        suffix Go builds by, then the longest common start)."""
        found = [d for d in found if not _never_called(d)]
        paths = {d.path for d in found}
        if len(paths) < 2:
            return found
        stem = _stem(path)
        parts = set(stem.split("_"))

        def distance(other: str) -> tuple[int, int, str]:
            theirs = _stem(other)
            shared = len(parts.intersection(theirs.split("_")))
            return (-shared, -len(os.path.commonprefix([stem, theirs])), other)

        best = min(paths, key=distance)
        return [d for d in found if d.path == best]


# Per package file, while its symbols are the same object: its package clause's name.
_PACKAGE_NAMES: dict[str, tuple[FileSymbols, str]] = {}
_PACKAGE_NAMES_LOCK = threading.Lock()
_PACKAGE_CLAUSE = re.compile(r"\s*package\s+([A-Za-z_][A-Za-z0-9_]*)")
_TEST_ENTRY = re.compile(r"(?:Test|Benchmark|Example|Fuzz)(?:[A-Z_0-9]|$)")


def _never_called(d: Definition) -> bool:
    """`func init()` and `func main()` (run by the program) and a test file's test
    functions (run by `go test`)."""
    if d.kind != "function":
        return False
    if d.name in ("init", "main"):
        return True
    return d.path.endswith("_test.go") and _TEST_ENTRY.match(d.name) is not None


def _stem(path: str) -> str:
    """A Go file's name without `.go` and `_test`."""
    name = os.path.basename(path)
    return name[: -len("_test.go")] if name.endswith("_test.go") else name[:-3]


SPECS = (
    LanguageSpec(
        "go",
        (".go",),
        _grammar,
        QUERY,
        KEYWORDS,
        rules=GoRules,
        resolver=GoResolver,
        retrieval=GoRetrieval,
        project_files=("go.mod", "go.work"),
        editor_ids=("go",),
    ),
)
