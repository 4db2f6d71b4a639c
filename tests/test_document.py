"""The cursor window and column conversions.

The window properties are what make typing cheap: the prefix window's first line moves
only every `prefix_lines // 4` lines and the suffix window does not change when the user
types or presses Enter at the cursor, so the prompt grows at its end. They are checked
over every cursor position of generated documents.
"""

from __future__ import annotations

from itertools import pairwise

import pytest
from lsprotocol.types import PositionEncodingKind

from lsp_server.completion.document import (
    CHARS_PER_LINE,
    CursorWindow,
    PositionError,
    codepoints_to_utf16,
    cursor_window,
    utf16_to_codepoints,
)
from lsp_server.protocol.convert import codepoints_to_column, column_to_codepoints

CODE = 'package main\n\nimport "fmt"\n\nfunc main() {\n\tfmt.Println("hi")\n\n   \n}\n'


def window(text: str, line: int, character: int, p: int = 120, s: int = 40) -> CursorWindow:
    return cursor_window(text, line, character, prefix_lines=p, suffix_lines=s)


def numbered(n: int) -> list[str]:
    return [f"line {i} = compute({i})" for i in range(n)]


# ---- cursor_window -----------------------------------------------------------------------


def test_cut_at_the_cursor() -> None:
    w = window(CODE, 5, 5)
    assert w.line_prefix == "\tfmt."
    assert w.line_suffix == 'Println("hi")'
    assert w.prefix == 'package main\n\nimport "fmt"\n\nfunc main() {\n\tfmt.'
    assert w.suffix == 'Println("hi")\n\n   \n}\n'
    assert w.prefix + w.suffix == CODE
    assert (w.line, w.character, w.prefix_start_line, w.suffix_end_line) == (5, 5, 0, 10)
    assert w.next_nonempty_line == "}"  # blank and whitespace-only lines skipped


def test_next_nonempty_line_is_empty_at_the_end() -> None:
    assert window(CODE, 8, 1).next_nonempty_line == ""
    assert window("x = 1", 0, 5).next_nonempty_line == ""


def test_column_past_the_end_of_the_line_is_clamped() -> None:
    w = window(CODE, 4, 500)
    assert w.character == len("func main() {")
    assert w.line_prefix == "func main() {" and w.line_suffix == ""


@pytest.mark.parametrize(("line", "character"), [(10, 0), (99, 0), (-1, 0), (0, -1)])
def test_position_outside_the_document_raises(line: int, character: int) -> None:
    with pytest.raises(PositionError, match="outside the document"):
        window(CODE, line, character)
    assert issubclass(PositionError, ValueError)


def test_trailing_newline_gives_a_last_empty_line() -> None:
    w = window(CODE, 9, 0)  # CODE ends with "\n": line 9 exists and is empty
    assert w.prefix == CODE and w.suffix == ""
    assert window("", 0, 0).prefix == ""


def test_crlf_lines() -> None:
    text = "def f():\r\n    return 1\r\n\r\nx = f()\r\n"
    w = window(text, 1, 100)
    assert w.line_prefix == "    return 1"  # the column is clamped before the "\r"
    assert w.line_suffix == ""
    assert w.next_nonempty_line == "x = f()"


def test_prefix_window_is_whole_lines() -> None:
    lines = numbered(300)
    text = "\n".join(lines)
    w = window(text, 250, 7, p=40, s=10)
    assert w.prefix == "".join(ln + "\n" for ln in lines[w.prefix_start_line : 250]) + "line 25"
    assert w.suffix == lines[250][7:] + "".join("\n" + ln for ln in lines[251 : w.suffix_end_line])


@pytest.mark.parametrize(("prefix_lines", "suffix_lines"), [(120, 40), (8, 4), (1, 0), (5, 1)])
def test_prefix_window_start_moves_only_every_quarter_window(
    prefix_lines: int, suffix_lines: int
) -> None:
    lines = numbered(400)
    text = "\n".join(lines)
    stride = max(1, prefix_lines // 4)
    starts = []
    for line in range(len(lines)):
        start = window(text, line, 3, prefix_lines, suffix_lines).prefix_start_line
        # at least `prefix_lines` lines of context (all of them near the top) ...
        assert start <= max(0, line - prefix_lines)
        # ... and never a whole stride more
        assert line - start < prefix_lines + stride or start == 0
        assert start % stride == 0
        starts.append(start)
    assert starts == sorted(starts)  # moving down never moves the window up
    changes = sum(1 for a, b in pairwise(starts) if a != b)
    assert changes == starts[-1] // stride


@pytest.mark.parametrize(("prefix_lines", "suffix_lines"), [(120, 40), (8, 4), (1, 0), (5, 1)])
def test_suffix_window_keeps_its_content_when_enter_is_pressed(
    prefix_lines: int, suffix_lines: int
) -> None:
    lines = numbered(200)
    lines[50] = ""
    text = "\n".join(lines)
    for line in range(len(lines)):
        for character in {0, 4, len(lines[line])}:
            if character > len(lines[line]):
                continue
            before = window(text, line, character, prefix_lines, suffix_lines)
            current = lines[line]
            entered = "\n".join(
                lines[:line] + [current[:character], current[character:]] + lines[line + 1 :]
            )
            after = window(entered, line + 1, 0, prefix_lines, suffix_lines)
            assert after.suffix == before.suffix, (line, character)
            if after.prefix_start_line == before.prefix_start_line:
                assert after.prefix == before.prefix + "\n"


@pytest.mark.parametrize("suffix_lines", [40, 4, 0])
def test_suffix_window_holds_at_least_suffix_lines(suffix_lines: int) -> None:
    lines = numbered(200)
    text = "\n".join(lines)
    stride = max(1, suffix_lines // 4)
    for line in range(len(lines)):
        end = window(text, line, 0, 120, suffix_lines).suffix_end_line
        wanted = min(len(lines), line + 1 + suffix_lines)
        assert wanted <= end < wanted + stride or end == len(lines)


def test_typing_at_the_cursor_only_grows_the_prefix() -> None:
    lines = numbered(120)
    text = "\n".join(lines)
    for line in range(0, len(lines), 3):
        current = lines[line]
        for character in range(0, len(current) + 1, 5):
            before = window(text, line, character, 40, 12)
            typed = "\n".join(
                lines[:line] + [current[:character] + "é" + current[character:]] + lines[line + 1 :]
            )
            after = window(typed, line, character + 1, 40, 12)
            assert after.prefix == before.prefix + "é"
            assert after.suffix == before.suffix


# ---- UTF-16 columns ------------------------------------------------------------------------

MIXED = 'a😀中b🎉é"'  # astral (2 UTF-16 units), CJK (1), Latin-1 (1)


def test_a_minified_line_is_cut_to_the_windows_character_budget() -> None:
    """One line of megabytes (a bundle, a JSON dump) must not become the prompt: the
    windows hold at most `CHARS_PER_LINE` characters per window line, and the cut moves
    in steps so that typing at the cursor keeps the start of the prompt."""
    line = "".join(f'{{"id":{i},"name":"item {i}"}},' for i in range(100_000))  # 2.6 MB
    cursor = len(line) // 2
    w = window(line, 0, cursor, p=120, s=40)
    assert len(w.prefix) <= 120 * CHARS_PER_LINE and len(w.suffix) <= 40 * CHARS_PER_LINE
    assert line[:cursor].endswith(w.prefix) and line[cursor:].startswith(w.suffix)
    assert len(w.prefix) >= 120 * CHARS_PER_LINE * 3 // 4  # cut in quarter steps
    assert (w.prefix_start_line, w.suffix_end_line) == (0, 1)
    assert w.line_prefix == line[:cursor]  # the whole line for the post-processing
    starts = set()
    for typed in range(1, 200):
        text = line[:cursor] + "x" * typed + line[cursor:]
        after = window(text, 0, cursor + typed)
        assert after.suffix == w.suffix
        starts.add(len(text[: cursor + typed]) - len(after.prefix))
    assert len(starts) == 1  # 200 keystrokes, one prompt start


def test_long_lines_are_cut_at_a_line_start() -> None:
    lines = [f"row_{i} = '{'x' * 400}'" for i in range(300)]
    text = "\n".join(lines)
    w = window(text, 299, len(lines[299]), p=120)
    assert len(w.prefix) <= 120 * CHARS_PER_LINE
    first = w.prefix.split("\n")[0]
    assert first in lines and w.prefix_start_line == lines.index(first)
    # Ordinary code is never cut: 120 lines of 60 characters are all there.
    code = "\n".join(f"value_{i} = compute_something({i}, other_argument)" for i in range(300))
    assert window(code, 299, 5, p=120).prefix_start_line == 299 - 120 - (299 - 120) % 30


@pytest.mark.parametrize(
    ("utf16", "codepoints"),
    [(0, 0), (1, 1), (3, 2), (4, 3), (5, 4), (7, 5), (8, 6), (9, 7), (50, 7), (-3, 0)],
)
def test_utf16_to_codepoints(utf16: int, codepoints: int) -> None:
    assert utf16_to_codepoints(MIXED, utf16) == codepoints


def test_utf16_inside_a_surrogate_pair_moves_past_the_character() -> None:
    assert utf16_to_codepoints(MIXED, 2) == 2  # between the halves of 😀


def test_utf16_round_trip() -> None:
    for line in (MIXED, "中文字符", "plain ascii", "🎉🎉🎉", ""):
        for index in range(len(line) + 1):
            assert utf16_to_codepoints(line, codepoints_to_utf16(line, index)) == index
    assert codepoints_to_utf16(MIXED, 2) == 3
    assert codepoints_to_utf16("中文", 2) == 2
    assert codepoints_to_utf16("ascii", 99) == 5


# ---- lsp_server.protocol.convert: every negotiated encoding ------------------------------------------

ENCODINGS = [
    PositionEncodingKind.Utf8,
    PositionEncodingKind.Utf16,
    PositionEncodingKind.Utf32,
    "utf-8",
    "utf-16",
    "utf-32",
]


def units(text: str, encoding: str) -> int:
    if encoding == "utf-8":
        return len(text.encode("utf-8"))
    if encoding == "utf-16":
        return len(text.encode("utf-16-le")) // 2
    return len(text)


@pytest.mark.parametrize("encoding", ENCODINGS)
def test_columns_round_trip_in_every_encoding(encoding: str) -> None:
    for line in (MIXED, "中文字符", "plain ascii", "🎉", ""):
        for index in range(len(line) + 1):
            column = codepoints_to_column(line, index, encoding)
            assert column == units(line[:index], getattr(encoding, "value", encoding))
            assert column_to_codepoints(line, column, encoding) == index


@pytest.mark.parametrize("encoding", ENCODINGS)
def test_columns_past_the_end_are_clamped(encoding: str) -> None:
    assert column_to_codepoints(MIXED, 1000, encoding) == len(MIXED)
    assert column_to_codepoints(MIXED, -1, encoding) == 0


def test_column_values_per_encoding() -> None:
    line = "é😀x"  # é: 2 bytes, 1 unit; 😀: 4 bytes, 2 units
    assert [codepoints_to_column(line, 3, e) for e in ("utf-8", "utf-16", "utf-32")] == [7, 4, 3]
    assert column_to_codepoints(line, 6, "utf-8") == 2
    assert column_to_codepoints(line, 3, "utf-16") == 2
    assert column_to_codepoints(line, 2, "utf-32") == 2


def test_the_server_passes_an_encoding_convert_understands() -> None:
    # A client that sends no general.positionEncodings gets pygls' default (the enum).
    from lsp_server.protocol.server import server

    assert column_to_codepoints("éxy", 2, server.encoding()) == 2  # UTF-16 column 2


def test_a_snapshot_of_a_huge_file_counts_only_the_chunks_around_the_cursor() -> None:
    """A 50 MB file has tens of thousands of chunks; counting each (a round trip to the
    engine process) took the first request in it past 30 s."""
    from lsp_server.completion.document import take_snapshot

    lines = [f"value_{i} = compute(value_{i}) + 1" for i in range(200_000)]
    text = "\n".join(lines) + "\n"
    calls: list[int] = []

    def count(s: str) -> int:
        calls.append(len(s))
        return len(s) // 4

    snap = take_snapshot(text, 150_000, 2_000, count)
    assert snap is not None and snap.first_line <= 150_000 < snap.end_line
    assert 1_000 < snap.tokens <= 2_000
    # The whole text once (bounded by the engine for a huge one), then the chunks the
    # snapshot grew through (each ≈ 280 tokens here) and the final check: not 6,250.
    assert len(calls) < 20, len(calls)


def test_a_snapshot_of_one_long_line_is_the_text_around_the_cursor() -> None:
    """No chunk of whole lines fits when a line holds megabytes: the snapshot is then the
    characters around the cursor within the budget, two thirds before it, with the same
    ends after a few more characters are typed (a refresh then re-evaluates nothing)."""
    from lsp_server.completion.document import take_snapshot

    text = "x = [" + ", ".join(str(i) for i in range(300_000)) + "]\n"

    def count(s: str) -> int:
        return -(-len(s) // 3)

    cursor = 1_000_000
    snap = take_snapshot(text, 0, 4_000, count, character=cursor)
    assert snap is not None and snap.partial and (snap.first_line, snap.end_line) == (0, 1)
    assert 3_000 < snap.tokens <= 4_000
    start = text.index(snap.text)
    assert start < cursor < start + len(snap.text)
    assert cursor - start > len(snap.text) // 2  # more of it before the cursor
    again = take_snapshot(text, 0, 4_000, count, character=cursor + 7)
    assert again is not None and again.text == snap.text
    assert take_snapshot(text, 0, 3, count, character=cursor) is None
