"""The text around the cursor, in whole lines, with windows that stay put as the user types.

The prefix window starts on a line that only moves every `stride` lines, and the suffix
window ends at a line anchored to the end of the document: while the user types, the prompt then grows at its end
instead of changing near its start, which is what lets the engine reuse model state.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass


class PositionError(ValueError):
    """A position outside the document."""


@dataclass(frozen=True, slots=True)
class CursorWindow:
    """The current document cut at the cursor."""

    prefix: str  # from the first line of the prefix window up to the cursor
    suffix: str  # from the cursor to the end of the suffix window
    line_prefix: str  # the cursor's line up to the cursor
    line_suffix: str  # the cursor's line after the cursor
    line: int  # 0-based cursor line
    character: int  # 0-based cursor column, in code points
    prefix_start_line: int
    suffix_end_line: int  # exclusive
    next_nonempty_line: str  # the first non-blank line after the cursor's line ("" if none)


def split_lines(text: str) -> list[str]:
    """Lines without their terminators; a trailing newline gives a last empty line."""
    return text.split("\n")


def utf16_to_codepoints(line: str, character: int) -> int:
    """Convert an LSP UTF-16 column to a code-point index, clamped to the line's end."""
    if character <= 0:
        return 0
    if line.isascii():
        return min(character, len(line))
    units = 0
    for index, ch in enumerate(line):
        if units >= character:
            return index
        units += 2 if ord(ch) > 0xFFFF else 1
    return len(line)


def codepoints_to_utf16(line: str, index: int) -> int:
    """Convert a code-point index on `line` to an LSP UTF-16 column."""
    head = line[:index]
    if head.isascii():
        return len(head)
    return sum(2 if ord(ch) > 0xFFFF else 1 for ch in head)


def _stride(lines: int) -> int:
    return max(1, lines // 4)


# The windows hold at most this many characters per line of `prefix_lines` and
# `suffix_lines` on average: one line of a minified bundle or a JSON dump can hold
# megabytes, which must not become a prompt of tens of thousands of tokens (and a
# prefill of minutes) at every keystroke.
CHARS_PER_LINE = 100


def capped_prefix(prefix: str, cap: int) -> tuple[str, int]:
    """The end of ``prefix`` within ``cap`` characters, and how many line breaks were cut.

    The cut moves in steps of a quarter of the cap (as the first line moves in strides),
    and to the next line start when there is one within the step: typing at the cursor
    then leaves the start of the prompt as it was, and whole lines are kept when the
    lines are not all long."""
    if len(prefix) <= cap:
        return prefix, 0
    stride = max(1, cap // 4)
    cut = -(-(len(prefix) - cap) // stride) * stride
    line_start = prefix.find("\n", cut, cut + stride)
    if line_start != -1:
        cut = line_start + 1
    return prefix[cut:], prefix.count("\n", 0, cut)


def _capped_suffix(suffix: str, cap: int) -> str:
    """The start of ``suffix`` within ``cap`` characters, ending at a line end when one is
    in the last quarter."""
    if len(suffix) <= cap:
        return suffix
    line_end = suffix.rfind("\n", cap - max(1, cap // 4), cap)
    return suffix[: line_end if line_end > 0 else cap]


def cursor_window(
    text: str, line: int, character: int, *, prefix_lines: int, suffix_lines: int
) -> CursorWindow:
    """Cut `text` at (`line`, `character`), `character` in code points.

    A column past the end of its line is clamped to the end (as LSP prescribes); a
    line past the end of the document raises PositionError.
    """
    lines = split_lines(text)
    if line < 0 or line >= len(lines) or character < 0:
        raise PositionError(
            f"position {line}:{character} is outside the document ({len(lines)} lines)"
        )
    current = lines[line].removesuffix("\r")
    character = min(character, len(current))
    start = max(0, line - prefix_lines)
    if start:
        stride = _stride(prefix_lines)
        start = start // stride * stride
    # The suffix window's end is anchored to the distance from the end of the document:
    # lines typed above it (Enter at the cursor) then leave its content unchanged.
    remaining = max(0, len(lines) - (line + 1 + suffix_lines))
    end = len(lines) - remaining // _stride(max(1, suffix_lines)) * _stride(max(1, suffix_lines))
    before = lines[start:line]
    after = lines[line + 1 : end]
    line_prefix, line_suffix = current[:character], current[character:]
    prefix = "".join(part + "\n" for part in before) + line_prefix
    suffix = line_suffix + "".join("\n" + part for part in after)
    prefix, cut_lines = capped_prefix(prefix, prefix_lines * CHARS_PER_LINE)
    start += cut_lines
    capped = _capped_suffix(suffix, max(1, suffix_lines) * CHARS_PER_LINE)
    if len(capped) < len(suffix):
        suffix = capped
        end = line + 1 + suffix.count("\n")
    next_nonempty = next((ln for ln in lines[line + 1 :] if ln.strip()), "")
    return CursorWindow(
        prefix=prefix,
        suffix=suffix,
        line_prefix=line_prefix,
        line_suffix=line_suffix,
        line=line,
        character=character,
        prefix_start_line=start,
        suffix_end_line=end,
        next_nonempty_line=next_nonempty.removesuffix("\r"),
    )


@dataclass(frozen=True, slots=True)
class FileSnapshot:
    """The current file as the prompt's stable part shows it: taken at one moment (the
    first request in the file, then refreshes while the user is idle), not at every
    keystroke. The live code around the cursor is the cursor window's."""

    text: str  # lines first_line..end_line-1 of the document, joined
    first_line: int
    end_line: int  # exclusive
    lines: int  # the document's line count when taken
    tokens: int
    # Only a part of its lines (one line of a minified bundle or a JSON dump is longer
    # than the budget): `text` is the characters around the cursor that fit.
    partial: bool = False


SNAPSHOT_CHUNK = 32  # lines counted at once when a snapshot must be cut to its budget


def take_snapshot(
    text: str, line: int, budget: int, count: Callable[[str], int], character: int = 0
) -> FileSnapshot | None:
    """The whole of `text` when it fits `budget` tokens, else the lines around `line`
    that do (two thirds of them above it, in chunks of `SNAPSHOT_CHUNK` lines); when not
    even the chunk at `line` fits (lines of megabytes), the characters around
    (`line`, `character`) that do, two thirds of them before it; None when nothing does."""
    lines = split_lines(text)
    whole = count(text)
    if whole <= budget:
        return FileSnapshot(text, 0, len(lines), len(lines), whole)
    chunks = [
        (start, min(len(lines), start + SNAPSHOT_CHUNK))
        for start in range(0, len(lines), SNAPSHOT_CHUNK)
    ]
    sizes: dict[int, int] = {}

    def size(i: int) -> int:
        """Chunk `i`'s tokens, counted when first needed: a 50 MB file has tens of
        thousands of chunks, and only those around the cursor are ever looked at."""
        if i not in sizes:
            a, b = chunks[i]
            sizes[i] = count("\n".join(lines[a:b]) + "\n")
        return sizes[i]

    here = min(max(0, line), len(lines) - 1) // SNAPSHOT_CHUNK
    lo, hi, used = here, here, 0
    if size(here) > budget:
        return _part_of_lines(text, lines, line, character, budget, count)
    used = size(here)
    while True:
        above = lo > 0 and (here - lo) <= 2 * (hi - here)
        grow = lo - 1 if above else hi + 1
        if not 0 <= grow < len(chunks):
            grow = hi + 1 if above else lo - 1
            if not 0 <= grow < len(chunks):
                break
        if used + size(grow) > budget:
            break
        used += size(grow)
        lo, hi = min(lo, grow), max(hi, grow)
    first, end = chunks[lo][0], chunks[hi][1]
    shown = "\n".join(lines[first:end])
    n = count(shown)
    while n > budget and end - first > SNAPSHOT_CHUNK:  # (tokens merge across chunk ends)
        if end - line > line - first:
            end -= SNAPSHOT_CHUNK
        else:
            first += SNAPSHOT_CHUNK
        shown = "\n".join(lines[first:end])
        n = count(shown)
    if n > budget:
        return None
    return FileSnapshot(shown, first, end, len(lines), n)


def _part_of_lines(
    text: str,
    lines: list[str],
    line: int,
    character: int,
    budget: int,
    count: Callable[[str], int],
) -> FileSnapshot | None:
    """The characters of `text` around (`line`, `character`) within `budget` tokens, two
    thirds before it; its ends on multiples of an eighth of its length, so that a refresh
    after typing a little shows the same text."""
    if budget <= 0 or not text:
        return None
    line = min(max(0, line), len(lines) - 1)
    offset = sum(len(lines[i]) + 1 for i in range(line)) + min(character, len(lines[line]))
    sample = text[max(0, offset - 4096) : offset + 4096]
    per_token = max(1.0, len(sample) / max(1, count(sample)))
    size = int(budget * per_token * 0.9)
    for _ in range(8):
        if size < 16:
            return None
        stride = max(1, size // 8)
        start = max(0, (offset - size * 2 // 3) // stride * stride)
        end = min(len(text), start + size)
        start = max(0, min(start, end - size))
        shown = text[start:end]
        n = count(shown)
        if n <= budget:
            first = text.count("\n", 0, start)
            return FileSnapshot(
                shown, first, first + shown.count("\n") + 1, len(lines), n, partial=True
            )
        size = int(size * budget / n * 0.95)
    return None
