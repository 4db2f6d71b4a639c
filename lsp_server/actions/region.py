"""Which lines a quick fix may rewrite: the smallest block around the problem that parses
once the problem is taken out.

A broken bracket makes the tree end wherever the parser gave up (often at the end of the
file), so the candidates come from the lines' indentation, which a missing `)` does not
move: the statement at the problem (with the lines indented under it and a closing `}` or
`end` at its level), then the block that holds it (the function), then the one holding
that (the class), up to the top-level block. Each candidate is tried by replacing it with
a neutral line (`pass` in Python, an empty line elsewhere) and re-parsing incrementally:
the first one after which no syntax error is left near it, and no error appears that was
not already in the rest of the file, is the region. Never the whole file.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence

from context.languages import parser
from lsp_server.actions.diagnostics import ParsedText, _point, problems_of_tree

# Words and characters that close a block at the level of its opening line.
_CLOSING = ("}", ")", "]", "end", "else", "elif", "except", "finally", "until", "case ")
# At most this many candidate regions are parsed for one problem.
MAX_TRIES = 6


def fix_region(parsed: ParsedText, first: int, last: int, limit: int) -> tuple[int, int]:
    """The lines (inclusive) a fix of a syntax error on lines ``first..last`` rewrites:
    the smallest indentation block around them that parses once taken out, at most
    ``limit`` lines; the largest tried when none does (never the whole file)."""
    lines = parsed.text.split("\n")
    best: tuple[int, int] | None = None
    for tries, (start, end) in enumerate(candidates(lines, first, last)):
        if end - start + 1 > limit or tries >= MAX_TRIES:
            break
        best = (start, end)
        if _parses_without(parsed, lines, start, end):
            return start, end
    if best is None:
        return first, min(last, first + limit - 1)
    return best


def candidates(lines: Sequence[str], first: int, last: int) -> Iterator[tuple[int, int]]:
    """Blocks around lines ``first..last``, smallest first, by indentation."""
    total = _last_code_line(lines)
    start = _code_line_at_or_before(lines, first)
    end = _block_end(lines, start, max(last, start))
    yield start, min(end, total)
    while _indent(lines[start]) > 0:
        header = _header_of(lines, start)
        if header is None:
            return
        start = header
        end = max(end, _block_end(lines, start, start))
        yield start, min(end, total)


def statement_block(lines: Sequence[str], first: int, last: int) -> tuple[int, int]:
    """The statement at lines ``first..last`` with what is indented under it."""
    return next(candidates(lines, first, last))


def _parses_without(parsed: ParsedText, lines: Sequence[str], start: int, end: int) -> bool:
    """Whether the text with lines ``start..end`` replaced by a neutral line parses (no
    error near the place, none that the rest of the file did not already have)."""
    indent = lines[start][: len(lines[start]) - len(lines[start].lstrip())]
    neutral = f"{indent}pass" if parsed.language == "python" else ""
    before = "\n".join(lines[:start])
    start_byte = len(before.encode("utf-8", "surrogatepass")) + (1 if start else 0)
    old_end_byte = start_byte + len(
        "\n".join(lines[start : end + 1]).encode("utf-8", "surrogatepass")
    )
    replacement = neutral.encode("utf-8")
    source = parsed.source[:start_byte] + replacement + parsed.source[old_end_byte:]
    tree = parsed.tree.copy()
    tree.edit(
        start_byte=start_byte,
        old_end_byte=old_end_byte,
        new_end_byte=start_byte + len(replacement),
        start_point=_point(parsed.source, start_byte),
        old_end_point=_point(parsed.source, old_end_byte),
        new_end_point=_point(source, start_byte + len(replacement)),
    )
    new_tree = parser(parsed.language).parse(source, tree)
    after = problems_of_tree(new_tree, source, parsed.language, confirm=False)
    shift = 1 - (end - start + 1)  # lines after the region move by this much
    elsewhere = {
        (p.message, p.line + (shift if p.line > end else 0))
        for p in parsed.problems
        if p.line < start or p.line > end
    }
    for problem in after:
        if start - 1 <= problem.line <= start + 1:
            return False
        if (problem.message, problem.line) not in elsewhere:
            return False
    return True


def _indent(line: str) -> int:
    stripped = line.lstrip()
    return len(line[: len(line) - len(stripped)].expandtabs(8)) if stripped else -1


def _code_line_at_or_before(lines: Sequence[str], row: int) -> int:
    row = min(row, len(lines) - 1)
    while row > 0 and not lines[row].strip():
        row -= 1
    return row


def _last_code_line(lines: Sequence[str]) -> int:
    row = len(lines) - 1
    while row > 0 and not lines[row].strip():
        row -= 1
    return row


def _block_end(lines: Sequence[str], start: int, last: int) -> int:
    """The last line of the block opened at ``start``: the lines after ``last`` indented
    deeper than ``start``, and the closing lines at its level (`}`, `end`, `else`)."""
    level = _indent(lines[start])
    end = last
    row = last + 1
    while row < len(lines):
        line = lines[row]
        indent = _indent(line)
        if indent < 0:
            row += 1
            continue
        stripped = line.lstrip()
        if indent > level or (indent == level and stripped.startswith(_CLOSING)):
            end = row
            row += 1
            continue
        break
    return end


def _header_of(lines: Sequence[str], row: int) -> int | None:
    """The nearest line above ``row`` that is indented less (the block's header)."""
    level = _indent(lines[row])
    for above in range(row - 1, -1, -1):
        indent = _indent(lines[above])
        if 0 <= indent < level:
            stripped = lines[above].lstrip()
            if stripped.startswith(_CLOSING[:3]):  # `}` of a sibling block: keep going up
                level = indent + 1
                continue
            return above
    return None
