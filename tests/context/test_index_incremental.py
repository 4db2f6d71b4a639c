"""Open documents are re-parsed incrementally; files changed on disk are re-indexed."""

from __future__ import annotations

import os
import random
from pathlib import Path

import pytest

from context.index import WorkspaceIndex
from context.open_documents import edit_between
from context.symbols import file_symbols

MODULE = '''\
"""Geometry helpers."""
from .base import Base


class Shape(Base):
    """A shape."""

    def area(self) -> float:
        return 0.0


def perimeter(shape: Shape) -> float:
    return 1.0
'''


@pytest.fixture
def ws(tmp_path: Path):  # type: ignore[no-untyped-def]
    root = tmp_path / "ws"
    (root / "geo").mkdir(parents=True)
    (root / "geo" / "__init__.py").write_text("")
    (root / "geo" / "base.py").write_text("class Base:\n    pass\n")
    (root / "geo" / "shapes.py").write_text(MODULE)
    index = WorkspaceIndex([str(root)], cache_dir=str(tmp_path / "cache"))
    index.build()
    yield index, os.path.join(os.path.realpath(root), "geo", "shapes.py")
    index.close()


def test_edit_adds_and_renames_definitions(ws) -> None:  # type: ignore[no-untyped-def]
    index, path = ws
    added = MODULE + "\n\ndef volume(shape: Shape) -> float:\n    return 2.0\n"
    symbols = index.update_document(path, added)
    assert symbols is not None
    assert [d.name for d in index.definitions_named("volume")] == ["volume"]
    renamed = added.replace("def perimeter(", "def circumference(")
    index.update_document(path, renamed)
    assert index.definitions_named("perimeter") == []
    [circ] = index.definitions_named("circumference")
    assert (circ.path, circ.start_line, circ.end_line) == (path, 11, 12)
    assert index.file(path) == file_symbols(path, renamed.encode(), "python")
    assert index.text(path) == renamed


def test_close_document_makes_the_disk_authoritative_again(ws) -> None:  # type: ignore[no-untyped-def]
    index, path = ws
    index.update_document(path, MODULE.replace("perimeter", "unsaved"))
    assert index.definitions_named("perimeter") == []
    index.close_document(path)
    assert [d.name for d in index.definitions_named("perimeter")] == ["perimeter"]
    assert index.definitions_named("unsaved") == []
    assert index.text(path) == MODULE


def test_incremental_parse_matches_a_full_parse_over_random_edits(ws) -> None:  # type: ignore[no-untyped-def]
    index, path = ws
    rng = random.Random(7)
    text = MODULE
    pieces = [
        "def f():\n    pass\n",
        "class K:\n",
        "    ",
        "é",
        "ü€",
        "\n",
        "x",
        "(",
        ")",
        '"""',
        "# c\n",
        "import os\n",
        "from . import z\n",
    ]
    for step in range(120):
        a = rng.randrange(len(text) + 1)
        b = min(len(text), a + rng.randrange(0, 12))
        text = text[:a] + (rng.choice(pieces) if rng.random() < 0.7 else "") + text[b:]
        got = index.update_document(path, text)
        assert got == file_symbols(path, text.encode(), "python"), f"step {step}"


def test_edit_computation_handles_multibyte_text() -> None:
    old = "αβγ\nδ = 1\n".encode()
    new = "αβγ\nδδ = 1\n".encode()
    edit = edit_between(old, new)
    assert edit["start_byte"] == len("αβγ\nδ".encode())
    assert edit["old_end_byte"] == edit["start_byte"]
    assert edit["new_end_byte"] == edit["start_byte"] + len("δ".encode())
    assert (edit["start_point"].row, edit["start_point"].column) == (1, 2)
    same = edit_between(old, old)
    assert same["start_byte"] == same["old_end_byte"] == same["new_end_byte"]


def test_documents_outside_the_roots_are_parsed_but_not_indexed(ws, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    index, _ = ws
    stray = str(tmp_path / "elsewhere.py")
    symbols = index.update_document(stray, "def stray():\n    pass\n")
    assert symbols is not None and symbols.definitions[0].name == "stray"
    assert index.definitions_named("stray") == []
    assert index.update_document(str(tmp_path / "notes.txt"), "hello") is None


def test_update_file_and_remove_file(ws) -> None:  # type: ignore[no-untyped-def]
    index, path = ws
    with open(path, "a") as f:
        f.write("\n\ndef appended():\n    pass\n")
    st = os.stat(path)
    os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns + 2_000_000_000))
    symbols = index.update_file(path)
    assert symbols is not None and "appended" in {d.name for d in symbols.definitions}
    assert len(index.definitions_named("appended")) == 1
    new = os.path.join(os.path.dirname(path), "extra.py")
    with open(new, "w") as f:
        f.write("def extra():\n    pass\n")
    assert index.update_file(new) is not None
    assert new in index.files()
    os.remove(path)
    index.remove_file(path)
    assert path not in index.files()
    assert index.definitions_named("appended") == []
    index.remove_file(os.path.dirname(path))  # a deleted folder takes its files along
    assert index.files() == []


def test_update_file_ignores_what_is_not_indexable(ws, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    index, path = ws
    root = os.path.dirname(os.path.dirname(path))
    ignored = os.path.join(root, "build", "gen.py")
    os.makedirs(os.path.dirname(ignored))
    with open(ignored, "w") as f:
        f.write("def generated(): pass\n")
    assert index.update_file(ignored) is None
    assert index.update_file(os.path.join(root, "missing.py")) is None
    assert index.definitions_named("generated") == []


def test_gitignore_change_is_picked_up_by_update_file(ws) -> None:  # type: ignore[no-untyped-def]
    index, path = ws
    root = os.path.dirname(os.path.dirname(path))
    gitignore = os.path.join(root, ".gitignore")
    assert index.is_indexable(path)
    with open(gitignore, "w") as f:
        f.write("geo/shapes.py\n")
    index.update_file(gitignore)
    assert not index.is_indexable(path)
    assert index.update_file(path) is None
    assert path not in index.files()


def test_folder_bookkeeping_follows_adds_and_removals(ws) -> None:  # type: ignore[no-untyped-def]
    index, path = ws
    root = os.path.dirname(os.path.dirname(path))
    deep = os.path.join(root, "a", "b", "c")
    os.makedirs(deep)
    for name in ("x.py", "y.py"):
        with open(os.path.join(deep, name), "w") as f:
            f.write("X = 1\n")
        index.update_file(os.path.join(deep, name))
    assert index.has_dir(os.path.join(root, "a")) and index.has_dir(deep)
    assert index.files_in_dir(deep) == [os.path.join(deep, "x.py"), os.path.join(deep, "y.py")]
    index.remove_file(os.path.join(deep, "x.py"))
    assert index.has_dir(os.path.join(root, "a"))
    index.remove_file(os.path.join(deep, "y.py"))
    assert not index.has_dir(deep) and not index.has_dir(os.path.join(root, "a"))
    assert index.has_dir(root) and index.has_dir(os.path.dirname(path))


def test_open_symbols_only_for_the_exact_text_indexed(ws) -> None:  # type: ignore[no-untyped-def]
    """What code actions use instead of parsing again at every cursor move."""
    index, path = ws
    assert index.open_symbols(path, MODULE.encode()) is None  # not open
    edited = MODULE + "\n\ndef volume(shape: Shape) -> float:\n    return 2.0\n"
    index.update_document(path, edited)
    assert index.open_symbols(path, edited.encode()) == file_symbols(
        path, edited.encode(), "python"
    )
    assert index.open_symbols(path, (edited + "x").encode()) is None  # typed since
