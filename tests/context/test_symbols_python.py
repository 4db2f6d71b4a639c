"""Definitions, imports and references extracted from Python files."""

from __future__ import annotations

from context.symbols import file_symbols
from context.types import Definition, FileSymbols

SOURCE = '''\
"""Module doc."""
import os.path as osp, sys
from .sibling import helper as h, other

MAX_SIZE = 10
default_name = "x"


# Leading comment
# continues.
@decorator
class Shape(Base, mixins.Sized, metaclass=Meta):
    """A shape.

    With details.
    """

    def area(self) -> float:
        """Area."""
        def inner():
            return 1
        return 0.0

    @property
    def _private(self):
        return 1

    class Meta:
        pass


async def fetch(url: str,
                timeout: int = 3) -> bytes:
    return b""


# What it does.
def _helper():
    from .lazy import thing
    if True:
        class Local:
            pass
    return thing


if TYPE_CHECKING:
    from typing import Protocol

    def typed() -> None: ...
'''


def parse(source: str = SOURCE) -> FileSymbols:
    return file_symbols("/w/mod.py", source.encode(), "python")


def by_name(fs: FileSymbols) -> dict[tuple[str, str], Definition]:
    return {(d.name, d.parent): d for d in fs.definitions}


def test_functions_classes_methods_and_spans() -> None:
    defs = by_name(parse())
    shape = defs[("Shape", "")]
    assert (shape.kind, shape.start_line, shape.end_line, shape.signature_end_line) == (
        "class",
        11,
        28,
        11,
    )
    assert shape.doc == "A shape.\n\nWith details."
    assert shape.bases == ("Base", "mixins.Sized")  # keyword arguments are not bases
    area = defs[("area", "Shape")]
    assert (area.kind, area.start_line, area.end_line, area.doc) == ("method", 17, 21, "Area.")
    private = defs[("_private", "Shape")]
    assert private.start_line == 24  # the decorator line is not part of the definition
    assert not private.exported
    assert defs[("Meta", "Shape")].kind == "class"
    fetch = defs[("fetch", "")]
    assert (fetch.kind, fetch.start_line, fetch.end_line, fetch.signature_end_line) == (
        "function",
        31,
        33,
        32,
    )
    helper = defs[("_helper", "")]
    assert helper.doc == "What it does."
    assert not helper.exported
    assert defs[("typed", "")].kind == "function"  # under `if TYPE_CHECKING:`


def test_nested_functions_and_local_classes_are_not_definitions() -> None:
    names = {d.name for d in parse().definitions}
    assert "inner" not in names
    assert "Local" not in names


def test_module_level_constants_and_variables() -> None:
    defs = by_name(parse())
    assert defs[("MAX_SIZE", "")].kind == "constant"
    assert defs[("MAX_SIZE", "")].start_line == 4
    assert defs[("default_name", "")].kind == "variable"


def test_imports_with_aliases_relative_and_function_local() -> None:
    imports = parse().imports
    assert [(i.module, i.names, i.alias, i.local_names, i.line) for i in imports] == [
        ("os.path", (), "osp", (), 1),
        ("sys", (), "", (), 1),
        (".sibling", ("helper", "other"), "", ("h", "other"), 2),
        (".lazy", ("thing",), "", (), 38),  # inside a function body
        ("typing", ("Protocol",), "", (), 46),  # inside `if TYPE_CHECKING:`
    ]


def test_wildcard_import() -> None:
    fs = parse("from pkg.mod import *\n")
    assert fs.imports[0].names == ("*",)


def test_references_are_identifiers_without_keywords() -> None:
    refs = parse().references
    assert {"Shape", "Base", "thing", "osp", "helper", "Meta"} <= refs
    assert not {"def", "class", "return", "import"} & refs
    assert not any(r[0].isdigit() for r in refs)


def test_invalid_utf8_and_syntax_errors_do_not_crash() -> None:
    source = b"def ok():\n    return '\xff\xfe'\n\ndef broken(:\n  pass\nclass \xc3(\n"
    fs = file_symbols("/w/bad.py", source, "python")
    assert "ok" in {d.name for d in fs.definitions}
    empty = file_symbols("/w/empty.py", b"", "python")
    assert empty.definitions == () and empty.imports == ()


def test_docstring_quotes_and_prefixes_are_removed() -> None:
    fs = parse("def f():\n    r'''Raw doc.'''\n    return 1\n")
    assert fs.definitions[0].doc == "Raw doc."
