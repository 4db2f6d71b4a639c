"""What the inline item says about where its text goes, per client (the server side of
the editors' ghost text)."""

from __future__ import annotations

from lsp_server.completion.postprocess import Suggestion
from lsp_server.protocol.convert import inline_items


def _item(text: str, line: str, start: int, end: int, ranges: bool) -> tuple[str, object]:
    suggestion = Suggestion(text=text, line=0, character=start, end_character=end)
    (item,) = inline_items(suggestion, line, "utf-16", ranges=ranges).items
    return item.insert_text, item.range and (item.range.start.character, item.range.end.character)  # type: ignore[return-value]


def test_vscode_gets_ranges_neovim_gets_insertions() -> None:
    # Mid-line, nothing replaced: VS Code needs the empty range (without one it replaces
    # to the end of the line); Neovim gets none (it would draw the text over the code).
    line = "rv = self.xfind_object(object_type)"
    assert _item("method", line, 11, 11, ranges=True) == ("method", (11, 11))
    assert _item("method", line, 11, 11, ranges=False) == ("method", None)
    # Closing brackets the suggestion reproduces: replaced in VS Code; in Neovim the
    # text stops before them and they stay.
    assert _item('"hi")', "print()", 6, 7, ranges=True) == ('"hi")', (6, 7))
    assert _item('"hi")', "print()", 6, 7, ranges=False) == ('"hi"', None)
    assert _item("x\n)", "f()", 2, 3, ranges=False) == ("x\n", None)
    # At the end of the line a range is drawn the same either way: kept.
    assert _item("x + 1", "y = ", 4, 4, ranges=False) == ("x + 1", (4, 4))
