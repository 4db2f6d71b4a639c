"""A small in-memory stand-in for `context.index.WorkspaceIndex` (Python files only).

Retrieval is tested against this fake so that its tests do not depend on the
tree-sitter index; the integration tests (test_retrieve_languages.py) use the real one.
It parses with `ast`, follows the same conventions (0-based inclusive lines,
realpaths) and implements the methods retrieval calls.
"""

from __future__ import annotations

import ast
import os
from collections.abc import Sequence

from context.types import Definition, FileSymbols, Import


def _symbols(path: str, text: str) -> FileSymbols:
    tree = _parse_tolerantly(text)
    if tree is None:
        return FileSymbols(path=path, language="python")
    defs: list[Definition] = []
    imports: list[Import] = []

    def visit(body: Sequence[ast.stmt], parent: str) -> None:
        for node in body:
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
                first = node.body[0]
                sig_end = max(node.lineno - 1, first.lineno - 2)
                is_class = isinstance(node, ast.ClassDef)
                kind = "class" if is_class else ("method" if parent else "function")
                bases = tuple(ast.unparse(b) for b in node.bases) if is_class else ()
                defs.append(
                    Definition(
                        name=node.name,
                        kind=kind,
                        path=path,
                        start_line=node.lineno - 1,
                        end_line=(node.end_lineno or node.lineno) - 1,
                        signature_end_line=sig_end,
                        doc=ast.get_docstring(node) or "",
                        parent=parent,
                        bases=bases,
                        exported=not node.name.startswith("_"),
                    )
                )
                if is_class:
                    visit(node.body, node.name)
            elif isinstance(node, ast.Assign) and not parent:
                for target in node.targets:
                    if isinstance(target, ast.Name):
                        defs.append(
                            Definition(
                                name=target.id,
                                kind="constant" if target.id.isupper() else "variable",
                                path=path,
                                start_line=node.lineno - 1,
                                end_line=(node.end_lineno or node.lineno) - 1,
                                signature_end_line=node.lineno - 1,
                            )
                        )
            elif isinstance(node, ast.ImportFrom):
                names = tuple(a.name for a in node.names)
                local = tuple(a.asname or a.name for a in node.names)
                imports.append(
                    Import(
                        module="." * node.level + (node.module or ""),
                        names=names,
                        line=node.lineno - 1,
                        local_names=local if local != names else (),
                    )
                )
            elif isinstance(node, ast.Import):
                for alias in node.names:
                    imports.append(
                        Import(module=alias.name, alias=alias.asname or "", line=node.lineno - 1)
                    )

    visit(tree.body, "")
    refs = frozenset(n.id for n in ast.walk(tree) if isinstance(n, ast.Name))
    return FileSymbols(
        path=path,
        language="python",
        definitions=tuple(defs),
        imports=tuple(imports),
        references=refs,
    )


def _parse_tolerantly(text: str) -> ast.Module | None:
    """Parse, dropping trailing top-level statements until it parses (unsaved text is
    often cut in the middle of a statement; tree-sitter recovers, `ast` does not)."""
    lines = text.split("\n")
    end = len(lines)
    for _ in range(200):
        try:
            return ast.parse("\n".join(lines[:end]))
        except SyntaxError:
            end -= 1
            while end > 0 and (not lines[end].strip() or lines[end][:1].isspace()):
                end -= 1
            if end <= 0:
                return None
    return None


class FakeIndex:
    """The `WorkspaceIndex` API over the `.py` files of some roots, parsed with `ast`."""

    def __init__(self, roots: Sequence[str], **_: object) -> None:
        self.roots = [os.path.realpath(r) for r in roots]
        self._disk: dict[str, str] = {}
        self._open: dict[str, str] = {}
        self._symbols: dict[str, FileSymbols] = {}
        self._by_name: dict[str, list[Definition]] = {}

    def build(self, progress: object = None, cancel: object = None) -> int:
        for root in self.roots:
            for folder, _, names in os.walk(root):
                for name in sorted(names):
                    if name.endswith(".py"):
                        path = os.path.realpath(os.path.join(folder, name))
                        with open(path, encoding="utf-8") as handle:
                            self._disk[path] = handle.read()
                        self._set(path, _symbols(path, self._disk[path]))
        return len(self._symbols)

    def update_document(self, path: str, text: str) -> FileSymbols | None:
        path = os.path.realpath(path)
        self._open[path] = text
        return self._set(path, _symbols(path, text))

    def close_document(self, path: str) -> None:
        path = os.path.realpath(path)
        self._open.pop(path, None)
        if path in self._disk:
            self._set(path, _symbols(path, self._disk[path]))

    def file(self, path: str) -> FileSymbols | None:
        return self._symbols.get(path)

    def text(self, path: str) -> str | None:
        return self._open.get(path, self._disk.get(path))

    def files(self) -> list[str]:
        return sorted(self._symbols)

    def definitions_named(self, name: str) -> list[Definition]:
        return list(self._by_name.get(name, ()))

    def _set(self, path: str, symbols: FileSymbols) -> FileSymbols:
        old = self._symbols.get(path)
        if old is not None:
            for d in old.definitions:
                self._by_name[d.name] = [x for x in self._by_name[d.name] if x.path != path]
        self._symbols[path] = symbols
        for d in symbols.definitions:
            self._by_name.setdefault(d.name, []).append(d)
        return symbols

    def resolve_import(self, from_path: str, imp: Import) -> list[str]:
        module = imp.module
        level = len(module) - len(module.lstrip("."))
        parts = [p for p in module.lstrip(".").split(".") if p]
        if level:
            base = os.path.dirname(from_path)
            for _ in range(level - 1):
                base = os.path.dirname(base)
            bases = [base]
        else:
            bases = self.roots
        for base in bases:
            target = os.path.join(base, *parts)
            for candidate in (target + ".py", os.path.join(target, "__init__.py")):
                if candidate in self._symbols:
                    return [candidate]
        return []

    def importers_of(self, path: str) -> list[str]:
        return sorted(
            p
            for p, fs in self._symbols.items()
            if any(path in self.resolve_import(p, imp) for imp in fs.imports)
        )

    def root_of(self, path: str) -> str | None:
        for root in self.roots:
            if path == root or path.startswith(root + os.sep):
                return root
        return None


def test_fake_index_resolves_relative_and_absolute_imports(tmp_path):
    (tmp_path / "pkg").mkdir()
    (tmp_path / "pkg" / "__init__.py").write_text("from .util import helper\n")
    (tmp_path / "pkg" / "util.py").write_text("def helper(x):\n    return x\n")
    (tmp_path / "main.py").write_text("from pkg import helper\nimport pkg.util as u\n")
    index = FakeIndex([str(tmp_path)])
    index.build()
    main = os.path.realpath(tmp_path / "main.py")
    fs = index.file(main)
    assert fs is not None
    init = os.path.realpath(tmp_path / "pkg" / "__init__.py")
    util = os.path.realpath(tmp_path / "pkg" / "util.py")
    assert index.resolve_import(main, fs.imports[0]) == [init]
    assert index.resolve_import(main, fs.imports[1]) == [util]
    assert index.resolve_import(init, index.file(init).imports[0]) == [util]
    (helper,) = index.definitions_named("helper")
    assert (helper.start_line, helper.end_line, helper.signature_end_line) == (0, 1, 0)
    # Unsaved text cut in the middle of a statement still yields the imports.
    cut = index.update_document(main, "from pkg import helper\n\ndef f(x):\n    return helper(")
    assert cut is not None and cut.imports and [d.name for d in cut.definitions] == []
