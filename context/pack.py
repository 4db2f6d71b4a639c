"""Packing: choose snippets within a token budget and lay them out as file blocks.

Formats (docs/context.md shows examples):

- ``fim``: Qwen's repository format, one ``<|file_sep|>{relative path}\\n{text}\\n``
  block per file, as Qwen2.5-Coder/Qwen3-Coder were trained on.
- ``chat``: the same blocks for a chat prompt, each headed by a plain line
  ``# File: {relative path} ({label})`` and followed by a blank line; the label names
  the tier ("definitions", "recently edited or viewed", "elsewhere in this file",
  "similar code"), so a chat model knows why the block is there without markdown.

Several snippets of one file share a block: their line ranges are united and shown in
file order, and hidden stretches between them become one ``...`` line (indented like
the code around it).

Order. The engine reuses model state for the longest unchanged prefix of the prompt
(issue 4), so blocks go from what changes least to what changes most while the user
types in the current file:

1. ``definition``: definitions from other files (imported names, names used near the
   cursor, base classes). They change only when the cursor moves to code that uses
   other names, or when an import is edited.
2. ``recent``: regions of other files the user recently edited or viewed, and
   definitions from files with recent edits. They change when the user works in
   another file, never while typing here.
3. ``current``: far parts of the current file (outside the prefix/suffix windows the
   prompt builder adds): its imports, callees, the enclosing class's members. Their
   text is stable while typing, but they shift when the windows move.
4. ``similar``: windows lexically similar to the lines above the cursor; the query is
   recomputed when a line is completed, so this tier is the most volatile.

Inside a tier, blocks are sorted by path and snippets by line: never by score or
time, which would reorder blocks when nothing was added or removed. The same chosen
snippets therefore always render to the same bytes.

Budget. Each block is charged for its header, its pieces (each with its newline) and
its gap markers, counted separately and added up; the whole rendered text is then
counted once more and snippets are dropped, lowest score first, until it fits. The
budget is never exceeded, whatever the token counter.

Choice. Pass 1 takes every candidate but the similar windows, highest score first,
in its cheapest form (skeleton: signature + doc); pass 2 takes the *fill* candidates
(scored under `FILL_BELOW`: definitions nothing names yet) in their cheapest form;
pass 3 upgrades skeletons to whole bodies, highest score first, while the budget
allows; pass 4 fills what is left with similar windows. A tight budget therefore holds
many signatures rather than a few bodies: a definition the next line may use is worth
more than the body of one already shown.
"""

from __future__ import annotations

import bisect
import functools
import heapq
import logging
import math
import os
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from context.tokens import TokenCounter
from context.types import PackedContext, PromptFormat, Snippet

log = logging.getLogger(__name__)


TIERS = ("definition", "recent", "current", "similar")
# Candidates scored below this that are not similar windows are *fill* (definitions the
# code may use next though nothing names them yet, context/retrieve.py): taken after
# the other candidates' cheapest forms, before their upgrades to whole bodies.
FILL_BELOW = 36.0
_TIER_RANK = {name: rank for rank, name in enumerate(TIERS)}
TIER_LABELS = {
    "definition": "definitions",
    "recent": "recently edited or viewed",
    "current": "elsewhere in this file",
    "similar": "similar code",
}
FILE_SEP = "<|file_sep|>"
# A control token of Qwen's vocabularies, as text (`<|file_sep|>`, `<|im_end|>`, …).
_CONTROL = re.compile(r"<\|[A-Za-z0-9_]+\|>")


def plain_text(text: str) -> str:
    """`text` with every control-token string broken by a zero-width space after its
    `<`: for workspace text (code, file names) placed where the prompt's own control
    tokens are parsed (a FIM block, whose header is `<|file_sep|>`), so that only the
    prompt's own text can produce a control token."""
    return _CONTROL.sub(_break, text) if "<|" in text else text


def _break(match: re.Match[str]) -> str:
    return "<\u200b" + match.group(0)[1:]


GAP = "..."
_OPENERS = (":", "{", "(", "[", "=>", "->", "=")


def tier_of(snippet: Snippet) -> str:
    """The tier a snippet is packed in (unknown sources count as definitions)."""
    return snippet.source if snippet.source in _TIER_RANK else "definition"


def relative_path(path: str, root: str | Sequence[str] | None) -> str:
    """`path` relative to the longest root that contains it, with ``/`` separators."""
    roots = (root,) if isinstance(root, str) else tuple(root or ())
    return _relative(path, roots)


@functools.lru_cache(maxsize=8192)
def _relative(path: str, roots: tuple[str, ...]) -> str:
    best = ""
    for candidate in roots:
        if not candidate:
            continue
        base = candidate.rstrip("/\\")
        if (path == base or path.startswith(base + os.sep)) and len(base) > len(best):
            best = base
    rel = os.path.relpath(path, best) if best else path
    return rel.replace(os.sep, "/")


def document_name(path: str) -> str:
    """The name shown for a document in no workspace folder: its file name, without the
    scheme and fragment of a URI that is no file (``untitled:Untitled-1`` is
    ``Untitled-1``; a notebook cell's URI names its notebook)."""
    name = os.path.basename(path).split("#", 1)[0]
    return name.rsplit(":", 1)[-1] or name


def block_header(
    path: str, root: str | Sequence[str] | None, fmt: PromptFormat, source: str
) -> str:
    """The first line of a file block, newline included. A path in no workspace folder
    (only the current document's can be: an untitled buffer, a file opened from
    elsewhere) is shown by its name, as the prompt's own file is."""
    rel = relative_path(path, root)
    if os.path.isabs(rel):
        rel = document_name(rel)
    if fmt == "fim":
        return f"{FILE_SEP}{plain_text(rel)}\n"
    return f"# File: {rel} ({TIER_LABELS.get(source, TIER_LABELS['definition'])})\n"


def _block_footer(fmt: PromptFormat) -> str:
    # Chat blocks are separated by a blank line; FIM blocks follow Qwen's format as is.
    return "\n" if fmt == "chat" else ""


def render_block(snippet: Snippet, root: str | Sequence[str] | None, fmt: PromptFormat) -> str:
    """Render one snippet alone as a file block of format `fmt`."""
    body = snippet.text.rstrip("\n")
    if fmt == "fim":
        body = plain_text(body)
    return (
        block_header(snippet.path, root, fmt, tier_of(snippet)) + body + "\n" + _block_footer(fmt)
    )


# -- internal state --------------------------------------------------------------

Range = tuple[int, int]


def _indent(line: str) -> str:
    return line[: len(line) - len(line.lstrip())]


def _gap_line(before: str, after: str, elided_body: bool, uses_tabs: bool) -> str:
    """The ``...`` line for hidden lines, indented like the code it stands for.

    Inside a definition whose body is hidden it takes the body's indentation (one level
    deeper than a signature line); between unrelated snippets, that of the next line.
    """
    if elided_body:
        if before.rstrip().endswith(_OPENERS):
            return _indent(before) + ("\t" if uses_tabs else "    ") + GAP + "\n"
        return _indent(before) + GAP + "\n"
    return _indent(after) + GAP + "\n"


class _Source:
    """One snippet's text, cut into lines only as far as lines are asked for.

    Most candidates are never shown whole (a fill definition is shown by its signature,
    a body may not fit), so splitting every text up front cost more than the rest of
    packing.
    """

    __slots__ = ("start", "end", "text", "_newlines")

    def __init__(self, start: int, text: str) -> None:
        newlines = text.count("\n")
        if newlines and text.endswith("\n"):
            newlines -= 1  # a trailing newline is not an extra line
        self.start = start
        self.end = start + newlines
        self.text = text
        self._newlines = [-1]  # [k]: where the newline before line k is (-1: none)

    def _before(self, k: int) -> int:
        found = self._newlines
        text = self.text
        while len(found) <= k:
            at = text.find("\n", found[-1] + 1)
            found.append(at if at >= 0 else len(text))
        return found[k]

    def lines(self, first: int, last: int) -> str:
        """File lines `first..last` (within `start..end`) joined by newlines, each
        without its trailing ``\r``."""
        k0, k1 = first - self.start, last - self.start
        text = self.text
        begin = self._before(k0) + 1 if k0 else 0
        if k1 == self.end - self.start:
            finish = len(text) - 1 if text.endswith("\n") else len(text)
        else:
            finish = self._before(k1 + 1)
        chunk = text[begin:finish]
        if "\r" in chunk:
            chunk = "\n".join(part.rstrip("\r") for part in chunk.split("\n"))
        return chunk


class _FileLines:
    """Line texts of one file gathered from the snippets (0-based line -> text).

    A line shows the text of the first snippet added that covers it. Snippets are cut
    into lines lazily (`_Source`), a shown range as a few slices of the snippets that
    own its lines.

    Token counts of pieces and gap lines are kept by position, so that re-costing a
    growing block does not rebuild its text.
    """

    def __init__(self) -> None:
        self.lines: dict[int, str] = {}  # lines set directly, before any snippet's
        self.uses_tabs = False
        self._sources: list[_Source] = []
        self._owners: list[tuple[int, int, _Source]] | None = None
        self._owner_starts: list[int] = []
        self._pieces: dict[Range, int] = {}
        self._texts: dict[Range, str] = {}
        self._looked_up: dict[int, str] = {}
        self._gaps: dict[tuple[int, int, bool], int] = {}

    def add(self, snippet: Snippet) -> Range:
        text = snippet.text
        source = _Source(snippet.start_line, text)
        self._sources.append(source)
        self._owners = None
        # Lines no snippet covered so far may be covered now.
        for cache in (self._looked_up, self._texts, self._pieces, self._gaps):
            cache.clear()
        if not self.uses_tabs and (text.startswith("\t") or "\n\t" in text):
            self.uses_tabs = True
        return source.start, source.end

    def _segments(self) -> list[tuple[int, int, _Source]]:
        """Disjoint (first, last, source) stretches by line: each line belongs to the
        first source added that covers it."""
        if self._owners is not None:
            return self._owners
        bounds = sorted({s.start for s in self._sources} | {s.end + 1 for s in self._sources})
        by_start: dict[int, list[int]] = {}
        for order, source in enumerate(self._sources):
            by_start.setdefault(source.start, []).append(order)
        active: list[int] = []  # heap of the orders of the sources covering the line
        out: list[tuple[int, int, _Source]] = []
        for at, following in zip(bounds, bounds[1:], strict=False):
            for order in by_start.get(at, ()):
                heapq.heappush(active, order)
            while active and self._sources[active[0]].end < at:
                heapq.heappop(active)
            if not active:
                continue
            owner = self._sources[active[0]]
            if out and out[-1][2] is owner and out[-1][1] == at - 1:
                out[-1] = (out[-1][0], following - 1, owner)
            else:
                out.append((at, following - 1, owner))
        self._owners = out
        self._owner_starts = [first for first, _, _ in out]
        return out

    def line(self, i: int) -> str:
        text = self.lines.get(i)
        if text is not None:
            return text
        text = self._looked_up.get(i)
        if text is None:
            segments = self._segments()
            k = bisect.bisect_right(self._owner_starts, i) - 1
            found = k >= 0 and segments[k][1] >= i
            text = self._looked_up[i] = segments[k][2].lines(i, i) if found else ""
        return text

    def _join(self, start: int, end: int) -> str:
        """Lines `start..end` of the sources joined by newlines ("" where none)."""
        segments = self._segments()
        parts: list[str] = []
        at = start
        k = max(0, bisect.bisect_right(self._owner_starts, start) - 1)
        while at <= end and k < len(segments):
            first, last, source = segments[k]
            if last < at:
                k += 1
                continue
            if first > end:
                break
            parts.extend([""] * (first - at))  # lines no snippet covers
            at = max(at, first)
            upto = min(last, end)
            parts.append(source.lines(at, upto))
            at = upto + 1
            k += 1
        parts.extend([""] * (end + 1 - at))
        return "\n".join(parts)

    def piece(self, start: int, end: int) -> str:
        key = (start, end)
        text = self._texts.get(key)
        if text is None:
            if self.lines:
                line = self.line
                body = "\n".join(line(i) for i in range(start, end + 1))
            else:
                body = self._join(start, end)
            text = self._texts[key] = body + "\n"
        return text

    def gap(self, prev_end: int, next_start: int, elided: bool) -> str:
        before = self.line(prev_end)
        after = self.line(next_start) if next_start >= 0 else ""
        return _gap_line(before, after, elided, self.uses_tabs)

    def cost(self, ranges: list[Range], bodies: list[Range], count: TokenCounter) -> int:
        """Tokens of the pieces and gap lines of `ranges` (see `layout`)."""
        total = 0
        prev_end = -1
        for start, end in ranges:
            if prev_end >= 0:
                total += self._gap_cost(prev_end, start, _inside(bodies, prev_end), count)
            n = self._pieces.get((start, end))
            if n is None:
                n = self._pieces[(start, end)] = count(self.piece(start, end))
            total += n
            prev_end = end
        if prev_end >= 0 and _inside(bodies, prev_end):
            total += self._gap_cost(prev_end, -1, True, count)
        return total

    def window_cost(
        self, ranges: list[Range], bodies: list[Range], i0: int, i1: int, count: TokenCounter
    ) -> int:
        """The part of `cost` that depends on `ranges[i0:i1]`: their pieces, the gap lines
        before each and after the last, and the trailing gap line if it ends the block.

        Two range lists that agree outside their windows (same prefix before `i0`, same
        suffix after `i1`, and the same bodies around those) differ in cost by exactly the
        difference of their window costs.
        """
        n = len(ranges)
        total = 0
        for i in range(i0, i1):
            start, end = ranges[i]
            n_piece = self._pieces.get((start, end))
            if n_piece is None:
                n_piece = self._pieces[(start, end)] = count(self.piece(start, end))
            total += n_piece
            if i > 0:
                prev_end = ranges[i - 1][1]
                total += self._gap_cost(prev_end, start, _inside(bodies, prev_end), count)
        if 0 < i1 < n:
            prev_end = ranges[i1 - 1][1]
            elided = _inside(bodies, prev_end)
            total += self._gap_cost(prev_end, ranges[i1][0], elided, count)
        if i1 == n and n > 0 and _inside(bodies, ranges[-1][1]):
            total += self._gap_cost(ranges[-1][1], -1, True, count)
        return total

    def _gap_cost(self, prev_end: int, next_start: int, elided: bool, count: TokenCounter) -> int:
        key = (prev_end, next_start, elided)
        n = self._gaps.get(key)
        if n is None:
            n = self._gaps[key] = count(self.gap(prev_end, next_start, elided))
        return n

    def layout(self, ranges: list[Range], bodies: list[Range]) -> list[tuple[str, Range | None]]:
        """The texts of a block body in order: pieces (with their range) and gap lines.

        `bodies` are the whole extents of definitions shown as skeletons: a gap (or the
        end of the block) inside one of them hides the rest of a body.
        """
        out: list[tuple[str, Range | None]] = []
        prev_end = -1
        for start, end in ranges:
            if prev_end >= 0:
                elided = _inside(bodies, prev_end)
                out.append((self.gap(prev_end, start, elided), None))
            out.append((self.piece(start, end), (start, end)))
            prev_end = end
        if prev_end >= 0 and _inside(bodies, prev_end):
            out.append((self.gap(prev_end, -1, True), None))
        return out


def _inside(bodies: list[Range], line: int) -> bool:
    """Whether `line` is inside one of `bodies` (merged, sorted) and not its last line."""
    i = bisect.bisect_right(bodies, (line, _LAST)) - 1
    return i >= 0 and bodies[i][0] <= line < bodies[i][1]


# `(line, _LAST)` sorts after every range that starts at `line` or before it: bisecting
# a sorted list of ranges by it compares tuples in C, not through a key function.
_LAST = math.inf


def _first_ending_from(ranges: list[Range], line: int) -> int:
    """The index of the first of `ranges` (sorted, disjoint) that ends at `line` or
    later (`len(ranges)`: none)."""
    j = bisect.bisect_right(ranges, (line, _LAST))  # the ranges starting at `line` or before
    # Of those, only the last can end at `line` or later (they are disjoint).
    return j - 1 if j and ranges[j - 1][1] >= line else j


def _merge(ranges: Iterable[Range]) -> list[Range]:
    """Sorted union of inclusive ranges; touching ranges become one."""
    out: list[Range] = []
    for start, end in sorted(ranges):
        if out and start <= out[-1][1] + 1:
            if end > out[-1][1]:
                out[-1] = (out[-1][0], end)
        else:
            out.append((start, end))
    return out


def _union(merged: list[Range], extra: list[Range]) -> list[Range]:
    """`_merge([*merged, *extra])` for `merged` already sorted and merged, by inserting
    the few `extra` ranges (a block's ranges grow one candidate at a time)."""
    if not merged or len(extra) > 8:
        return _merge([*merged, *extra])
    out = list(merged)
    for start, end in extra:
        # Ranges that overlap or touch (start, end) are replaced by their union.
        i = _first_ending_from(out, start - 1)
        j = bisect.bisect_right(out, (end + 1, _LAST))
        if i < j:
            start, end = min(start, out[i][0]), max(end, out[j - 1][1])
        out[i:j] = [(start, end)]
    return out


def _subtract(ranges: list[Range], taken: list[Range]) -> list[Range]:
    """`ranges` minus the lines of `taken` (both sorted and merged)."""
    out: list[Range] = []
    for start, end in ranges:
        cur = start
        for t_start, t_end in taken:
            if t_end < cur or t_start > end:
                continue
            if t_start > cur:
                out.append((cur, t_start - 1))
            cur = max(cur, t_end + 1)
            if cur > end:
                break
        if cur <= end:
            out.append((cur, end))
    return out


class _Memo:
    """Token counts memoised for one packing (pieces are recounted as blocks grow)."""

    def __init__(self, count: TokenCounter) -> None:
        self.count = count
        self.memo: dict[str, int] = {}

    def __call__(self, text: str) -> int:
        n = self.memo.get(text)
        if n is None:
            n = self.memo[text] = self.count(text)
        return n


class _Block:
    """One (tier, file) block under construction, with its token cost."""

    def __init__(self, fixed_tokens: int, lines: _FileLines, count: _Memo) -> None:
        self.fixed_tokens = fixed_tokens  # header and footer
        self.lines = lines
        self.count = count
        self.ranges: list[Range] = []
        self.bodies: list[Range] = []
        self.tokens = 0  # 0 while empty: an empty block is not rendered

    def cost(self, ranges: list[Range], bodies: list[Range]) -> int:
        """The whole block's tokens for `ranges` (0 when empty)."""
        if not ranges:
            return 0
        return self.fixed_tokens + self.lines.cost(ranges, bodies, self.count)

    def delta(self, ranges: list[Range], bodies: list[Range], lo: int, hi: int) -> int:
        """`cost(ranges, bodies) - self.tokens` when only lines `lo..hi` changed.

        Re-costing only the affected stretch keeps a block with many pieces (a class
        outline) from costing quadratic time as it grows.
        """
        old = self.ranges
        if not old:
            return self.cost(ranges, bodies)
        # Ranges wholly before `lo` or after `hi` are the same in both lists.
        before = _first_ending_from(old, lo)
        after = len(old) - bisect.bisect_right(old, (hi, _LAST))
        new_cost = self.lines.window_cost(ranges, bodies, before, len(ranges) - after, self.count)
        old_cost = self.lines.window_cost(old, self.bodies, before, len(old) - after, self.count)
        return new_cost - old_cost


@dataclass
class _Choice:
    snippet: Snippet
    full: list[Range]
    cheap: list[Range] | None
    form: str = ""  # "" (not chosen), "cheap" or "full"

    def shown(self) -> list[Range]:
        return self.cheap if self.form == "cheap" and self.cheap is not None else self.full


# -- packing ---------------------------------------------------------------------


def pack(
    snippets: Sequence[Snippet],
    budget_tokens: int,
    count_tokens: TokenCounter,
    fmt: PromptFormat = "fim",
    root: str | Sequence[str] | None = None,
) -> PackedContext:
    """Choose among `snippets` within `budget_tokens` and render them in prompt order.

    Returns the chosen pieces (one `Snippet` per contiguous shown range, reasons of
    merged candidates joined with ``; ``, `tokens` filled) in the order they appear in
    the rendered `text`; `tokens` is the count of the whole `text`. See the module
    docstring for the choice, order and budget.
    """
    if budget_tokens <= 0 or not snippets:
        return PackedContext(snippets=(), tokens=0, text="", segments=())
    count = _Memo(count_tokens)
    files: dict[str, _FileLines] = {}
    choices: list[_Choice] = []
    ordered = sorted(
        snippets,
        key=lambda s: (
            -s.score,
            _TIER_RANK[tier_of(s)],
            s.path,
            s.start_line,
            s.end_line,
            s.reason,
        ),
    )
    for snippet in ordered:
        lines = files.get(snippet.path)
        if lines is None:
            lines = files[snippet.path] = _FileLines()
        full = [lines.add(snippet)]
        cheap = [lines.add(piece) for piece in snippet.skeleton if piece.path == snippet.path]
        choices.append(_Choice(snippet, full, _merge(cheap) if cheap else None))

    active = choices
    while True:
        blocks = _choose(active, files, budget_tokens, count, fmt, root)
        text, segments, pieces = _render(active, blocks, files, count, fmt, root)
        total = count(text) if text else 0
        if total <= budget_tokens:
            break
        # The parts fit but the whole does not (a tokenizer that merges across pieces):
        # drop the lowest-scored chosen candidate and choose again.
        log.debug("packed text is %d tokens > budget %d; dropping one", total, budget_tokens)
        last = [c for c in active if c.form][-1]
        active = [c for c in active if c is not last]
    return PackedContext(snippets=tuple(pieces), tokens=total, text=text, segments=segments)


def _choose(
    choices: list[_Choice],
    files: dict[str, _FileLines],
    budget: int,
    count: _Memo,
    fmt: PromptFormat,
    root: str | Sequence[str] | None,
) -> dict[tuple[str, str], _Block]:
    """Run the three passes; return the blocks by (tier, path)."""
    blocks: dict[tuple[str, str], _Block] = {}
    footer = _block_footer(fmt)
    remaining = budget
    for choice in choices:
        choice.form = ""

    def attempt(choice: _Choice, form: str) -> bool:
        nonlocal remaining
        key = (tier_of(choice.snippet), choice.snippet.path)
        block = blocks.get(key)
        if block is None:
            fixed = count(block_header(key[1], root, fmt, key[0])) + (
                count(footer) if footer else 0
            )
            block = blocks[key] = _Block(fixed, files[key[1]], count)
        shown = choice.cheap if form == "cheap" and choice.cheap is not None else choice.full
        ranges = _union(block.ranges, shown)
        lo, hi = shown[0][0], max(end for _, end in shown)
        if form == "cheap":
            # A skeleton hides the rest of its body: remember where, for the gap lines.
            bodies = _union(block.bodies, choice.full)
            lo, hi = min(lo, choice.full[0][0] - 1), max(hi, choice.full[-1][1])
        else:
            bodies = block.bodies
        # Touching ranges merge, and a gap line depends on the lines on both sides.
        delta = block.delta(ranges, bodies, lo - 2, hi + 2)
        if delta > remaining:
            return False
        block.ranges, block.bodies, block.tokens = ranges, bodies, block.tokens + delta
        remaining -= delta
        choice.form = form
        return True

    main = [c for c in choices if tier_of(c.snippet) != "similar" and c.snippet.score >= FILL_BELOW]
    fill = [c for c in choices if tier_of(c.snippet) != "similar" and c.snippet.score < FILL_BELOW]
    for choice in main:  # pass 1: every candidate, cheapest form
        attempt(choice, "cheap" if choice.cheap is not None else "full")
    for choice in fill:  # pass 2: definitions nothing names yet, as signatures
        attempt(choice, "cheap" if choice.cheap is not None else "full")
    for choice in main:  # pass 3: upgrade skeletons to whole bodies
        if choice.form == "cheap":
            attempt(choice, "full")
    for choice in choices:  # pass 4: similar windows fill what is left
        if tier_of(choice.snippet) == "similar":
            attempt(choice, "full")
    return blocks


def _render(
    choices: list[_Choice],
    blocks: dict[tuple[str, str], _Block],
    files: dict[str, _FileLines],
    count: _Memo,
    fmt: PromptFormat,
    root: str | Sequence[str] | None,
) -> tuple[str, tuple[tuple[str, str], ...], list[Snippet]]:
    """Lay the blocks out tier by tier, files by path; one Snippet per shown piece."""
    covering: dict[tuple[str, str], list[_Choice]] = {}
    for choice in choices:
        if choice.form:
            key = (tier_of(choice.snippet), choice.snippet.path)
            covering.setdefault(key, []).append(choice)

    shown: dict[str, list[Range]] = {}  # lines already shown by earlier tiers
    segments: list[tuple[str, str]] = []
    pieces: list[Snippet] = []
    footer = _block_footer(fmt)
    for tier in TIERS:
        parts: list[str] = []
        for key in sorted(k for k in blocks if k[0] == tier):
            path = key[1]
            block = blocks[key]
            # What each chosen candidate shows, by first line, to name the pieces' reasons.
            spans = sorted(
                (s, e, n, c.snippet.score)
                for n, c in enumerate(covering.get(key, []))
                for s, e in c.shown()
            )
            # A file in two tiers shows each line once, in the earlier tier.
            lines = files[path]
            ranges = [
                (start, end)
                for start, end in _subtract(block.ranges, shown.get(path, []))
                if not lines.piece(start, end).isspace()  # (a piece ends with its newline)
            ]
            if not ranges:
                continue
            shown[path] = _merge([*shown.get(path, []), *ranges])
            header = block_header(path, root, fmt, tier)
            parts.append(header)
            pending = count(header)
            block_choices = covering.get(key, [])
            # (start, end, text, reasons, score, tokens) per piece; made Snippets once the
            # block's last piece has its trailing gap line and footer charged.
            made: list[tuple[int, int, str, str, float, int]] = []
            # Pieces come in line order: a span that ends before a piece can name no
            # later one (a sweep, not every span for every piece of a class outline).
            ahead = 0
            active: list[tuple[int, int, int, float]] = []
            for text, span in lines.layout(ranges, block.bodies):
                if fmt == "fim":
                    text = plain_text(text)
                parts.append(text)
                if span is None:  # a gap line is charged to the piece after it
                    pending += count(text)
                    continue
                start, end = span
                while ahead < len(spans) and spans[ahead][0] <= end:
                    active.append(spans[ahead])
                    ahead += 1
                active = [sp for sp in active if sp[1] >= start]
                best = 0.0
                covered: set[int] = set()
                for _, _, n, score in active:
                    if n not in covered:
                        covered.add(n)
                        if score > best:
                            best = score
                reasons: list[str] = []
                for n in sorted(covered):
                    reason = block_choices[n].snippet.reason
                    if reason not in reasons:
                        reasons.append(reason)
                made.append(
                    (start, end, text[:-1], "; ".join(reasons), best, count(text) + pending)
                )
                pending = 0
            if footer:
                pending += count(footer)
            if pending and made:  # a trailing gap line and the footer
                start, end, body, why, best, n_tokens = made[-1]
                made[-1] = (start, end, body, why, best, n_tokens + pending)
            if footer:
                parts.append(footer)
            pieces.extend(
                Snippet(path, start, end, body, why, best, n_tokens, tier)
                for start, end, body, why, best, n_tokens in made
            )
        if parts:
            segments.append((tier, "".join(parts)))
    text = "".join(t for _, t in segments)
    return text, tuple(segments), pieces
