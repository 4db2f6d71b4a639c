"""Retrieval on a small Python workspace, with the in-memory fake index.

Each source must contribute with its reason, the budget must hold, a keystroke that
does not change the choice must not change a byte, and edits must be seen.
"""

from __future__ import annotations

import os
import random
from pathlib import Path

import pytest
from test_retrieve_fake import FakeIndex

from context.recent import RecentActivity
from context.retrieve import collect_candidates, gather_context
from context.similar import SimilarWindows
from context.tokens import estimate_tokens

MODELS = '''"""Models."""


class Base:
    """Base of all models."""

    def save(self):
        """Save it."""
        return True

    def delete(self):
        return False


class User(Base):
    """A user."""

    def __init__(self, name):
        self.name = name

    def greet(self, other: "User") -> str:
        """Say hello."""
        return f"hi {other.name}"
'''

UTIL = (
    "def slugify(value: str) -> str:\n"
    '    """Make a slug out of a value."""\n'
    + "".join(f'    value = value.replace("{i}", "-")\n' for i in range(20))
    + "    return value\n\n\n"
    "def unused_helper(a, b):\n"
    "    return a + b\n"
)

APP = (
    "from pkg import User\n"
    "from pkg.util import slugify, unused_helper\n"
    "\n\n"
    "def normalise(text):\n"
    '    """Lower-case and strip."""\n'
    "    return text.strip().lower()\n"
    "\n\n"
    "class Admin(User):\n"
    '    """An administrator."""\n'
    "\n"
    "    def promote(self):\n"
    "        return True\n" + "".join(f"    # filler {i}\n" for i in range(30)) + "\n"
    "    def rename(self, name):\n"
    "        cleaned = normalise(name)\n"
    "        slug = slugify(cleaned)\n"
    "        self.name = slug\n"
    '        label = "done"\n'
    "        return label\n"
)


@pytest.fixture
def workspace(tmp_path: Path) -> dict[str, str]:
    (tmp_path / "pkg").mkdir()
    (tmp_path / "pkg" / "__init__.py").write_text("from .models import User\n")
    (tmp_path / "pkg" / "models.py").write_text(MODELS)
    (tmp_path / "pkg" / "util.py").write_text(UTIL)
    (tmp_path / "app.py").write_text(APP)
    (tmp_path / "other.py").write_text(
        "def unrelated():\n" + "".join(f"    x{i} = {i}\n" for i in range(30))
    )
    real = os.path.realpath(tmp_path)
    return {
        "root": real,
        "app": os.path.join(real, "app.py"),
        "models": os.path.join(real, "pkg", "models.py"),
        "util": os.path.join(real, "pkg", "util.py"),
        "other": os.path.join(real, "other.py"),
    }


def _index(ws: dict[str, str]) -> FakeIndex:
    index = FakeIndex([ws["root"]])
    index.build()
    return index


def _similar(index: FakeIndex) -> SimilarWindows:
    store = SimilarWindows(window_lines=10, step=5)
    for path in index.files():
        store.update_file(path, index.text(path) or "")
    return store


def _cursor(text: str, needle: str) -> tuple[int, int]:
    for number, line in enumerate(text.split("\n")):
        if needle in line:
            return number, line.index(needle) + len(needle)
    raise AssertionError(needle)


def _gather(index, recent, similar, ws, text=APP, needle="self.name = slug", **kwargs):
    line, character = _cursor(text, needle)
    kwargs.setdefault("budget_tokens", 4000)
    kwargs.setdefault("prefix_lines", 4)
    kwargs.setdefault("suffix_lines", 2)
    return gather_context(
        index,
        recent,
        similar,
        path=ws["app"],
        text=text,
        line=line,
        character=character,
        count_tokens=estimate_tokens,
        **kwargs,
    )


def _reasons(packed) -> list[tuple[str, str, str]]:
    return [(os.path.basename(s.path), s.source, s.reason) for s in packed.snippets]


def test_imported_definition_used_at_the_cursor_is_packed(workspace):
    index = _index(workspace)
    packed = _gather(index, None, None, workspace)
    assert "def slugify(value: str) -> str:" in packed.text
    slug = [s for s in packed.snippets if "def slugify" in s.text]
    assert slug and "imported from pkg.util, used near the cursor" in slug[0].reason
    assert slug[0].source == "definition"
    # Through the package's re-export, `User` resolves to pkg/models.py.
    assert "class User(Base):" in packed.text


def test_each_source_contributes_with_its_reason(workspace):
    index = _index(workspace)
    recent = RecentActivity()
    recent.note_edit(workspace["other"], 10, 12)
    packed = _gather(index, recent, _similar(index), workspace, budget_tokens=20_000)
    reasons = " | ".join(s.reason for s in packed.snippets)
    by_source = {s.source for s in packed.snippets}
    assert by_source == {"definition", "recent", "current", "similar"}
    assert "definition of `slugify` imported from pkg.util, used near the cursor" in reasons
    assert "definition of `unused_helper` imported from pkg.util" in reasons
    assert "base class `User` of `Admin`" in reasons
    assert "base class `Base` of `User`" in reasons
    assert "definition of `normalise` in this file, used near the cursor" in reasons
    assert "member of `Admin`" in reasons
    assert "imports of this file" in reasons
    assert "recently edited" in reasons
    assert "similar to the code above the cursor" in reasons
    # The current document's windows are the prompt builder's: not repeated here.
    current = [s for s in packed.snippets if s.path == workspace["app"]]
    line, _ = _cursor(APP, "self.name = slug")
    assert all(s.end_line < line - 4 or s.start_line > line + 2 for s in current)


def test_callees_of_the_cursors_function_come_from_this_file(workspace):
    # `normalise` is called at the top of a long function, far from the cursor.
    filler = "".join(f"        step_{i} = {i}\n" for i in range(30))
    text = APP.replace(
        "        slug = slugify(cleaned)\n", filler + "        slug = slugify(cleaned)\n"
    )
    index = _index(workspace)
    index.update_document(workspace["app"], text)
    packed = _gather(index, None, None, workspace, text=text, needle="self.name = slug")
    called = [s for s in packed.snippets if "def normalise" in s.text]
    assert called and called[0].reason == "`normalise`, called by `rename`"
    assert called[0].source == "current"


def test_budget_is_never_exceeded_for_random_budgets_and_cursors(workspace):
    index = _index(workspace)
    recent = RecentActivity()
    recent.note_view(workspace["other"], 5)
    recent.note_edit(workspace["util"], 3, 4)
    similar = _similar(index)
    rng = random.Random(99)
    lines = APP.split("\n")
    for _ in range(120):
        line = rng.randrange(len(lines))
        budget = rng.choice([0, 1, 10, 40, 100, 250, 600, 2000, rng.randint(0, 5000)])
        fmt = rng.choice(["fim", "chat"])
        packed = gather_context(
            index,
            recent,
            similar,
            path=workspace["app"],
            text=APP,
            line=line,
            character=rng.randrange(len(lines[line]) + 1),
            budget_tokens=budget,
            fmt=fmt,
            prefix_lines=rng.choice([0, 3, 10, 120]),
            suffix_lines=rng.choice([0, 2, 40]),
        )
        assert packed.tokens <= budget
        assert estimate_tokens(packed.text) == packed.tokens


def test_tight_budget_keeps_signatures_over_bodies(workspace):
    index = _index(workspace)
    roomy = _gather(index, None, None, workspace, budget_tokens=20_000)
    assert 'value = value.replace("19", "-")' in roomy.text
    tight = _gather(index, None, None, workspace, budget_tokens=120)
    assert "def slugify(value: str) -> str:" in tight.text
    assert 'value = value.replace("19", "-")' not in tight.text


def test_typing_that_keeps_the_choice_keeps_every_byte(workspace):
    """Typing a string literal inside the function: the packed text must not move."""
    index = _index(workspace)
    recent = RecentActivity()
    recent.note_edit(workspace["other"], 10, 12)
    similar = _similar(index)
    base_line, _ = _cursor(APP, 'label = "done"')
    lines = APP.split("\n")
    seen: set[str] = set()
    typed = ""
    for char in "all good now":
        typed += char
        current = lines[base_line].replace('"done"', '"done' + typed + '"')
        text = "\n".join([*lines[:base_line], current, *lines[base_line + 1 :]])
        index.update_document(workspace["app"], text)
        packed = gather_context(
            index,
            recent,
            similar,
            path=workspace["app"],
            text=text,
            line=base_line,
            character=current.index('"done') + 5 + len(typed),
            budget_tokens=3000,
            prefix_lines=4,
            suffix_lines=2,
        )
        seen.add(packed.text)
    assert len(seen) == 1


def _candidates_at_line_end(index, workspace, lines: list[str], line: int):
    """The candidates for the cursor at the end of ``lines[line]`` of the app file."""
    return collect_candidates(
        index,
        None,
        None,
        path=workspace["app"],
        text="\n".join(lines),
        line=line,
        character=len(lines[line]),
        prefix_lines=4,
        suffix_lines=2,
    )


def test_a_half_typed_name_does_not_pull_definitions(workspace):
    index = _index(workspace)
    line, _ = _cursor(APP, 'label = "done"')
    lines = APP.split("\n")
    lines[line] = "        x = unused_hel"
    candidates = _candidates_at_line_end(index, workspace, lines, line)
    helper = [c for c in candidates if "unused_helper" in c.reason]
    assert helper and all("used near the cursor" not in c.reason for c in helper)


def test_only_names_near_the_cursor_of_a_long_line_count(workspace):
    """On a minified line only the characters around the cursor are "near" (a regex over
    the whole of a megabyte line cost 0.2 s per keystroke)."""
    from context.names import NEAR_CHARS

    index = _index(workspace)
    line, _ = _cursor(APP, 'label = "done"')
    lines = APP.split("\n")
    filler = "x + " * (NEAR_CHARS // 2)
    lines[line] = f"        y = unused_helper() + {filler}1 + {filler}z"
    candidates = _candidates_at_line_end(index, workspace, lines, line)
    helper = [c.reason for c in candidates if "`unused_helper`" in c.reason]
    assert helper and all("used near the cursor" not in r for r in helper), helper
    near = lines[line][: len(lines[line]) - len(filler) - 5] + " + unused_helper()"
    lines[line] = near
    candidates = _candidates_at_line_end(index, workspace, lines, line)
    helper = [c.reason for c in candidates if "`unused_helper`" in c.reason]
    assert any("used near the cursor" in r for r in helper), helper


def test_an_edit_in_another_file_is_seen_by_the_next_retrieval(workspace):
    index = _index(workspace)
    first = _gather(index, None, None, workspace)
    assert "def slugify(value: str) -> str:" in first.text
    edited = UTIL.replace(
        "def slugify(value: str) -> str:", "def slugify(value: str, sep: str) -> str:"
    )
    index.update_document(workspace["util"], edited)
    second = _gather(index, None, None, workspace)
    assert "def slugify(value: str, sep: str) -> str:" in second.text
    assert "def slugify(value: str) -> str:" not in second.text


def test_an_edit_in_the_current_file_is_seen(workspace):
    index = _index(workspace)
    text = APP.replace(
        "from pkg.util import slugify, unused_helper", "from pkg.util import slugify"
    )
    index.update_document(workspace["app"], text)
    packed = _gather(index, None, None, workspace, text=text)
    assert "unused_helper" not in packed.text


def test_recently_edited_files_definitions_pack_after_stable_ones(workspace):
    index = _index(workspace)
    recent = RecentActivity()
    recent.note_edit(workspace["util"], 0, 1)
    packed = _gather(index, recent, None, workspace, budget_tokens=20_000)
    slug = [s for s in packed.snippets if "def slugify" in s.text]
    assert slug[0].source == "recent"
    order = [s.source for s in packed.snippets]
    assert order == sorted(order, key=["definition", "recent", "current", "similar"].index)


def test_sources_can_be_switched_off(workspace):
    index = _index(workspace)
    recent = RecentActivity()
    recent.note_edit(workspace["other"], 10, 12)
    packed = _gather(
        index,
        recent,
        _similar(index),
        workspace,
        budget_tokens=20_000,
        definitions=False,
        recent_edits=False,
    )
    assert {s.source for s in packed.snippets} == {"similar"}
    nothing = _gather(
        index,
        recent,
        _similar(index),
        workspace,
        definitions=False,
        recent_edits=False,
        similar_windows=False,
    )
    assert nothing.snippets == () and nothing.text == ""


def test_the_near_part_of_a_long_line_moves_in_steps_and_cuts_between_tokens():
    from context.names import NEAR_CHARS
    from context.names import near_part as _near_part

    line = "a.b(" + "foo.helperFn + x; " * 400 + "zz"
    step = NEAR_CHARS // 4
    parts = {_near_part(line, c) for c in range(8 * step, 9 * step)}
    assert len(parts) == 1  # a quarter of NEAR_CHARS typed: the same part
    (part,) = parts
    assert part.lstrip().startswith(("foo.", "+ x", "x;"))  # never `helperFn` cut from `foo.`
    assert part.endswith(";")
    assert _near_part(line, 8 * step) != _near_part(line, 9 * step)
    assert _near_part(line, 100).startswith("a.b(")  # near the line's start: from there
