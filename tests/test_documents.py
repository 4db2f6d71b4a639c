"""The open documents' bookkeeping: where a warm-up goes, which document is active, and
the text a prefetch completes after a suggestion is accepted."""

from __future__ import annotations

from lsp_server.completion.postprocess import Suggestion
from lsp_server.documents import OpenDocuments, after_accepting


def test_a_warm_up_starts_at_the_last_cursor_kept_inside_the_text() -> None:
    docs = OpenDocuments()
    docs.opened("/w/a.py", "python")
    assert docs.warm_position("/w/a.py", "x = 1\n") == (0, 0)  # never asked: the start
    docs.cursor_at("/w/a.py", 9, 30)
    assert docs.active == "/w/a.py"
    # The file shrank since: the last line, at most its end.
    assert docs.warm_position("/w/a.py", "x = 1\ndef f():\n    pass") == (2, 8)
    assert docs.language_id("/w/a.py") == "python" and docs.language_id("/w/b.py") == ""


def test_closing_the_active_document_leaves_none_active() -> None:
    docs = OpenDocuments()
    docs.cursor_at("/w/a.py", 1, 0)
    docs.closed("/w/b.py")
    assert docs.active == "/w/a.py"
    docs.closed("/w/a.py")
    assert docs.active == "" and docs.warm_position("/w/a.py", "a\nb") == (0, 0)


def test_the_text_after_accepting_a_suggestion() -> None:
    text = "def f(x):\n    return \n"
    one_line = Suggestion(text="x + 1", line=1, character=11, end_character=11)
    assert after_accepting(text, one_line) == ("def f(x):\n    return x + 1\n", 1, 16)
    lines = Suggestion(text="(\n        x\n    )", line=1, character=11, end_character=11)
    assert after_accepting(text, lines) == (
        "def f(x):\n    return (\n        x\n    )\n",
        3,
        5,
    )
