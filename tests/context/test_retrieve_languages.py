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


def test_typing_a_line_keeps_the_prefix_of_unchanged_tiers(tmp_path):
    """Keystroke by keystroke through the real index: when the snippets of the first
    tiers are the same as before, their rendered text is byte-identical."""
    from context.recent import RecentActivity
    from context.similar import SimilarWindows

    files = dict(WORKSPACES["python"])
    files["pkg/extra.py"] = "".join(
        f"def extra_{i}(a):\n    return a + {i}\n\n\n" for i in range(30)
    )
    # Not imported: found by name once typed in full.
    files["pkg/totals.py"] = "def compute_total(a):\n    return sum(a)\n"
    files["main.py"] = (
        "from pkg.util import helper\n"
        "from pkg.extra import extra_1, extra_2\n"
        "\n\n"
        "def run(x):\n"
        "    y = helper(x)\n"
        "    return y\n"
    )
    _write(tmp_path, files)
    root = os.path.realpath(tmp_path)
    index = index_module.WorkspaceIndex([root], cache_dir="")
    index.build()
    similar = SimilarWindows(window_lines=8, step=4)
    similar.update_many(index.files(), index.text)
    recent = RecentActivity()
    recent.note_edit(os.path.join(root, "pkg/extra.py"), 20, 22)
    main = os.path.join(root, "main.py")
    base = files["main.py"].split("\n")
    typed_line = "    z = extra_1(y) + compute_total(helper(y))"
    previous = None
    changes: list[bool] = []
    tiers = ("definition", "recent", "current", "similar")
    for n in range(len(typed_line) + 1):
        lines = [*base[:6], typed_line[:n], *base[6:]]
        text = "\n".join(lines)
        index.update_document(main, text)
        packed = gather_context(
            index,
            recent,
            similar,
            path=main,
            text=text,
            line=6,
            character=n,
            budget_tokens=2000,
            count_tokens=estimate_tokens,
            prefix_lines=2,
            suffix_lines=1,
        )
        assert packed.tokens <= 2000
        if previous is not None:
            before = dict(previous.segments)
            after = dict(packed.segments)
            for k, tier in enumerate(tiers):
                spans = [
                    {
                        (s.path, s.start_line, s.end_line)
                        for s in p.snippets
                        if s.source in tiers[: k + 1]
                    }
                    for p in (previous, packed)
                ]
                if spans[0] == spans[1]:
                    assert before.get(tier) == after.get(tier), (n, tier)
        changes.append(previous is not None and previous.text != packed.text)
        previous = packed
    # Keystrokes change nothing but once: when `compute_total` is typed in full and the
    # cursor leaves it, its definition comes in.
    assert sum(changes) == 1, changes
    assert "def compute_total(a):" in previous.text
    assert "def extra_1(a):" in previous.text and "def helper(value: int) -> int:" in previous.text
