"""Retrieval with the real tree-sitter index, on small workspaces in four languages.

The definition of a name imported from another file and used at the cursor must be
in the packed context; an edit of that file must be seen by the next retrieval; the
budget must hold.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from context.retrieve import gather_context
from context.tokens import estimate_tokens

index_module = pytest.importorskip("context.index")

WORKSPACES: dict[str, dict[str, str]] = {
    "python": {
        "pkg/__init__.py": "",
        "pkg/util.py": (
            'def helper(value: int) -> int:\n    """Double a value."""\n    return value * 2\n'
        ),
        "main.py": (
            "from pkg.util import helper\n\n\ndef run(x):\n    y = helper(x)\n    return y\n"
        ),
    },
    "typescript": {
        "src/util.ts": (
            "/** Double a value. */\n"
            "export function helper(value: number): number {\n"
            "  return value * 2;\n"
            "}\n"
        ),
        "src/main.ts": (
            'import { helper } from "./util";\n'
            "\n"
            "export function run(x: number): number {\n"
            "  const y = helper(x);\n"
            "  return y;\n"
            "}\n"
        ),
    },
    "go": {
        "go.mod": "module example.com/app\n\ngo 1.22\n",
        "util/util.go": (
            "package util\n"
            "\n"
            "// Helper doubles a value.\n"
            "func Helper(value int) int {\n"
            "\treturn value * 2\n"
            "}\n"
        ),
        "main.go": (
            "package main\n"
            "\n"
            'import "example.com/app/util"\n'
            "\n"
            "func run(x int) int {\n"
            "\ty := util.Helper(x)\n"
            "\treturn y\n"
            "}\n"
        ),
    },
    "rust": {
        "Cargo.toml": '[package]\nname = "app"\nversion = "0.1.0"\nedition = "2021"\n',
        "src/util.rs": (
            "/// Double a value.\npub fn helper(value: i32) -> i32 {\n    value * 2\n}\n"
        ),
        "src/main.rs": (
            "mod util;\n"
            "use crate::util::helper;\n"
            "\n"
            "fn run(x: i32) -> i32 {\n"
            "    let y = helper(x);\n"
            "    y\n"
            "}\n"
        ),
    },
}
MAIN = {"python": "main.py", "typescript": "src/main.ts", "go": "main.go", "rust": "src/main.rs"}
UTIL = {
    "python": "pkg/util.py",
    "typescript": "src/util.ts",
    "go": "util/util.go",
    "rust": "src/util.rs",
}
SIGNATURE = {
    "python": "def helper(value: int) -> int:",
    "typescript": "export function helper(value: number): number {",
    "go": "func Helper(value int) int {",
    "rust": "pub fn helper(value: i32) -> i32 {",
}
USE = {
    "python": "helper(x)",
    "typescript": "helper(x)",
    "go": "util.Helper(x)",
    "rust": "helper(x)",
}


def _write(root: Path, files: dict[str, str]) -> None:
    for name, text in files.items():
        target = root / name
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(text)


def _gather(index, path: str, text: str, needle: str, budget: int = 4000):
    lines = text.split("\n")
    line = next(i for i, x in enumerate(lines) if needle in x)
    return gather_context(
        index,
        None,
        None,
        path=path,
        text=text,
        line=line,
        character=lines[line].index(needle) + len(needle),
        budget_tokens=budget,
        count_tokens=estimate_tokens,
        prefix_lines=1,
        suffix_lines=1,
    )


@pytest.mark.parametrize("language", sorted(WORKSPACES))
def test_imported_definition_used_at_the_cursor_is_packed(tmp_path, language):
    _write(tmp_path, WORKSPACES[language])
    root = os.path.realpath(tmp_path)
    index = index_module.WorkspaceIndex([root], cache_dir="")
    index.build()
    main = os.path.join(root, MAIN[language])
    text = WORKSPACES[language][MAIN[language]]
    index.update_document(main, text)
    packed = _gather(index, main, text, USE[language])
    assert SIGNATURE[language] in packed.text, packed.text
    util = os.path.join(root, UTIL[language])
    hits = [s for s in packed.snippets if s.path == util and SIGNATURE[language] in s.text]
    assert hits and "used near the cursor" in hits[0].reason
    assert packed.tokens <= 4000

    # An unsaved edit of the other file is seen by the next retrieval.
    edited = WORKSPACES[language][UTIL[language]].replace("value", "amount")
    index.update_document(util, edited)
    again = _gather(index, main, text, USE[language])
    assert SIGNATURE[language].replace("value", "amount") in again.text, again.text

    for budget in (0, 5, 20, 40, 80, 160):
        assert _gather(index, main, text, USE[language], budget).tokens <= budget
