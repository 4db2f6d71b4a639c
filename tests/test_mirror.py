"""The server's copy of a document follows LSP's lines (\\n, \\r\\n, \\r), not Python's."""

from __future__ import annotations

import random
import re

from lsprotocol import types
from pygls.workspace import Workspace

from lsp_server.protocol.mirror import (
    LspTextDocument,
    SplitLines,
    lsp_lines,
    use_lsp_lines,
    with_lf_line_breaks,
)

ODD = ["\x0b", "\x0c", "\x1c", "\x1d", "\x1e", "\x85", "\u2028", "\u2029"]


def reference_lines(text: str) -> list[str]:
    """LSP's definition, written the slow obvious way."""
    return [m.group(0) for m in re.finditer(r"[^\r\n]*(\r\n|\r|\n)|[^\r\n]+$", text)]


def test_lines_break_only_where_lsp_does() -> None:
    assert lsp_lines("a\x0cb\nc\u2028d\r\ne\rf") == ["a\x0cb\n", "c\u2028d\r\n", "e\r", "f"]
    assert lsp_lines("") == [] and lsp_lines("\n\n") == ["\n", "\n"]
    rng = random.Random(7)
    alphabet = ["a", "b", " ", "\n", "\r", "\r\n", *ODD]
    for _ in range(500):
        text = "".join(rng.choice(alphabet) for _ in range(rng.randrange(30)))
        assert lsp_lines(text) == reference_lines(text), repr(text)


def test_lone_carriage_returns_become_line_feeds_in_place() -> None:
    text = "a\rb\r\nc\n"
    assert with_lf_line_breaks(text) == "a\nb\r\nc\n"
    assert len(with_lf_line_breaks(text)) == len(text)
    assert with_lf_line_breaks("no breaks") == "no breaks"


def apply_reference(text: str, change: tuple[int, int, int, int, str]) -> str:
    """An incremental change applied by offsets computed on LSP lines, columns in UTF-16
    code units as the editor sends them (a column past the end of a line is its end)."""
    lines = reference_lines(text)
    sl, sc, el, ec, new = change

    def offset(line: int, col: int) -> int:
        if line >= len(lines):
            return len(text)
        body = lines[line].rstrip("\r\n")
        units, index = 0, 0
        while index < len(body) and units < col:
            units += 2 if ord(body[index]) > 0xFFFF else 1
            index += 1
        return sum(len(x) for x in lines[:line]) + index

    start = offset(sl, sc)
    return text[:start] + new + text[max(start, offset(el, ec)) :]


def test_incremental_edits_land_on_the_lines_the_editor_means() -> None:
    """Random edits of documents holding form feeds, U+2028 and the three line ends, as
    an editor sends them: the server's copy stays equal to the editor's."""
    workspace = Workspace(None, types.TextDocumentSyncKind.Incremental)
    use_lsp_lines(workspace)
    rng = random.Random(3)
    pieces = ["x = 1", "def f():", "    pass", "#", " ", "\x0c", "\u2028", "\n", "\r\n", "\r"]
    for doc_number in range(40):
        text = "".join(rng.choice(pieces) for _ in range(40))
        uri = f"file:///tmp/doc{doc_number}.py"
        workspace.put_text_document(
            types.TextDocumentItem(uri=uri, language_id="python", version=1, text=text)
        )
        doc = workspace.get_text_document(uri)
        assert isinstance(doc, LspTextDocument)
        for _ in range(25):
            lines = reference_lines(text) or [""]
            sl = rng.randrange(len(lines))
            el = rng.randrange(sl, min(len(lines), sl + 3))
            # Columns up to 3 past the end of the line: LSP clamps them to its end.
            sc = rng.randrange(len(lines[sl].rstrip("\r\n")) + 4)
            ec = rng.randrange(len(lines[el].rstrip("\r\n")) + 4) if el > sl else sc
            if el == sl and ec < sc:
                sc, ec = ec, sc
            new = "".join(rng.choice(pieces) for _ in range(rng.randrange(3)))
            change = types.TextDocumentContentChangePartial(
                range=types.Range(types.Position(sl, sc), types.Position(el, ec)), text=new
            )
            doc.apply_change(change)
            text = apply_reference(text, (sl, sc, el, ec, new))
            assert doc.source == text


def test_random_edits_with_breaks_across_their_ends_and_past_the_end() -> None:
    """Edits that make or split line breaks across their ends (a CR before the edit and
    an LF typed after it), lines past the end, astral characters in UTF-16 columns: the
    server's copy stays equal to the editor's."""
    workspace = Workspace(None, types.TextDocumentSyncKind.Incremental)
    use_lsp_lines(workspace)
    rng = random.Random(11)
    pieces = ["ab", "x", " ", "\n", "\r", "\r\n", "\x0c", "é", "😀"]
    for doc_number in range(300):
        text = "".join(rng.choice(pieces) for _ in range(rng.randrange(25)))
        uri = f"file:///tmp/fuzz{doc_number}.py"
        workspace.put_text_document(
            types.TextDocumentItem(uri=uri, language_id="python", version=1, text=text)
        )
        doc = workspace.get_text_document(uri)
        for _ in range(40):
            lines = reference_lines(text) or [""]
            sl = rng.randrange(len(lines) + 2)  # now and then past the last line
            el = rng.randrange(sl, sl + 3)
            body = len(lines[sl].rstrip("\r\n")) if sl < len(lines) else 0
            sc = rng.randrange(body + 3)
            ec = rng.randrange(body + 3) if el == sl else rng.randrange(6)
            if el == sl and ec < sc:
                sc, ec = ec, sc
            new = "".join(rng.choice(pieces) for _ in range(rng.randrange(4)))
            doc.apply_change(
                types.TextDocumentContentChangePartial(
                    range=types.Range(types.Position(sl, sc), types.Position(el, ec)), text=new
                )
            )
            text = apply_reference(text, (sl, sc, el, ec, new))
            assert doc.source == text, (doc_number, repr(text))


def test_columns_past_the_end_are_the_end_of_the_line_in_utf16() -> None:
    """LSP clamps a column past the end of a line to its end. pygls's codec moved it one
    character back on a last line without a line break (and so cut that character)."""
    workspace = Workspace(None, types.TextDocumentSyncKind.Incremental)
    use_lsp_lines(workspace)
    uri = "file:///tmp/emoji.py"
    workspace.put_text_document(
        types.TextDocumentItem(uri=uri, language_id="python", version=1, text="a😀\nb😀c")
    )
    doc = workspace.get_text_document(uri)

    def edit(sl: int, sc: int, el: int, ec: int, text: str) -> str:
        doc.apply_change(
            types.TextDocumentContentChangePartial(
                range=types.Range(types.Position(sl, sc), types.Position(el, ec)), text=text
            )
        )
        return doc.source

    assert edit(1, 99, 1, 99, "!") == "a😀\nb😀c!"  # past the end of the last line
    assert edit(1, 3, 1, 4, "") == "a😀\nb😀!"  # after the emoji: UTF-16 column 3
    assert edit(0, 5, 1, 0, "") == "a😀b😀!"  # past the end of line 0: its line break goes


def test_an_edit_costs_in_proportion_to_the_edit_not_the_document() -> None:
    """A keystroke in a 20 MB document took 158–188 ms on the event loop (the whole text
    split and copied at each edit); now the lines it touches."""
    import time

    workspace = Workspace(None, types.TextDocumentSyncKind.Incremental)
    use_lsp_lines(workspace)
    line = "    value = compute(alpha, beta) + 12345  # a line of code\n"
    big = line * (20_000_000 // len(line))
    uri = "file:///tmp/big.py"
    workspace.put_text_document(
        types.TextDocumentItem(uri=uri, language_id="python", version=1, text=big)
    )
    doc = workspace.get_text_document(uri)
    middle = len(doc.lines) // 2
    timings = []
    for i in range(200):
        position = types.Position(middle, 4 + i % 10)
        started = time.perf_counter()
        doc.apply_change(
            types.TextDocumentContentChangePartial(
                range=types.Range(position, position), text="x" if i % 2 == 0 else "\n"
            )
        )
        timings.append(time.perf_counter() - started)
    timings.sort()
    assert timings[len(timings) // 2] < 0.002, f"median {timings[len(timings) // 2] * 1000:.1f} ms"
    text = doc.source
    assert len(text) == len(big) + 200 and text.count("\n") == big.count("\n") + 100


def test_split_lines_are_the_lines_of_the_text_split_at_line_feeds() -> None:
    """Requests read one line and the count through `SplitLines`, not the whole text split
    (0.3–0.8 s in a 50 MB file): the same lines as before, for every mix of line ends."""
    rng = random.Random(1)
    pieces = ["a", "é", "\n", "\r", "\r\n", "\x0c", "\u2028", "𝔘"]
    for _ in range(5000):
        text = "".join(rng.choice(pieces) for _ in range(rng.randint(0, 12)))
        want = with_lf_line_breaks(text).split("\n")
        got = SplitLines(lsp_lines(text))
        assert len(got) == len(want) and list(got) == want, repr(text)
        assert got[-1] == want[-1] and got[1:3] == want[1:3]
