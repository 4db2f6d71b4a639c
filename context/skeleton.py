"""Python files parsed for the index without the middles of their function bodies.

From inside a Python function the index keeps its docstring, its imports (at any depth)
and where it ends (``context.languages.PYTHON_QUERY``); nothing else. Yet parsing those
bodies is most of what a cold index of a Python tree costs: three quarters of Django's
bytes are function bodies. ``skipped_spans`` finds, in one lexical pass over the bytes,
the parts of function bodies that cannot change what the index extracts: after the
docstring (or from the first statement) up to the body's last statement, less the
statements that hold an import; inside that last statement, the same again for each of
its clauses; and the inside of a multi-line docstring. ``included_ranges`` turns them
into the ranges a tree-sitter parser is told to read: positions in the tree stay those
of the whole file, and each function still ends where its last statement ends.

The pass is conservative: it cuts only at line starts between two statements of the
same block (brackets balanced, no triple-quoted string open across a cut, no backslash
continuation into one, lines indented with spaces only) and leaves alone what it does not
model (tabs, form feeds, carriage returns). Where a cut still leaves a syntax error, the
caller parses the file again whole (``context.symbols.parse_skeleton``): a wrong guess
costs time, not contents. On every file of this machine's standard library and
site-packages that Python and tree-sitter both accept, the definitions and imports are
the same as from the whole parse (tests/context/test_skeleton.py checks a sample).
"""

from __future__ import annotations

import re

from tree_sitter import Point, Range

# Indentation the pass does not model (tabs, form feeds) or line ends it does not (CR):
# files with any are parsed whole.
_UNMODELLED = (b"\t", b"\r", b"\f")
_DEF_WORD = re.compile(rb"def ")
# The import keyword (also found in names, strings and comments: checked where found),
# and an import statement at its line's start.
_IMPORT_WORD = re.compile(rb"import\b")
_IMPORT_STATEMENT = re.compile(rb"(?:from|import)[ (]")
_NAME_BYTES = frozenset(
    bytes([c]) for c in b"abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_"
)
# After a header: blank and comment lines, then the first body line's indentation and,
# when the body opens with a string, its prefix and quotes.
_BODY = re.compile(rb"(?: *(?:#[^\n]*)?\n)*( *)(?:[rRuUbBfF]{0,2}(\"\"\"|'''|\"|'))?")
# A line of the body's own indentation that continues a statement rather than starting
# one: a clause of a compound statement or a closing bracket.
_CONTINUES = re.compile(rb"(?:else|elif|except|finally)\b|[)\]}]")
# First bytes of a line (after its indentation) that start no statement: deeper
# indentation, a comment, a blank line; and those that may start a clause or a closer.
_CLOSERS = frozenset((b")", b"]", b"}"))
_NOT_CODE = frozenset((b" ", b"#", b"\n", b""))
_MAYBE_CONTINUES = frozenset((b"e", b"f", b")", b"]", b"}"))
_STRING_START = re.compile(rb"[rRuUbBfF]{0,2}['\"]")
_ASYNC = re.compile(rb"async +")

_body_end: dict[int, re.Pattern[bytes]] = {}

# A signature longer than this is left alone (it bounds the pass on unbalanced text).
MAX_SIGNATURE_LINES = 64
# A block shorter than this many bytes is parsed whole, and no span shorter than
# MIN_SKIPPED is cut: the pass would cost more than it saves.
MIN_BODY = 300
MIN_SKIPPED = 150


def _balanced(text: bytes, start: int = 0, end: int | None = None) -> bool:
    """Whether ``text[start:end]`` opens as many brackets of each kind as it closes."""
    count = text.count
    return (
        count(b"(", start, end) == count(b")", start, end)
        and count(b"[", start, end) == count(b"]", start, end)
        and count(b"{", start, end) == count(b"}", start, end)
    )


def _ends_body(indent: int) -> re.Pattern[bytes]:
    """The newline before the next line of code indented ``indent`` or less (comment
    lines and blank lines do not end a body)."""
    pattern = _body_end.get(indent)
    if pattern is None:
        pattern = _body_end[indent] = re.compile(rb"\n(?= {0,%d}[^ \n#])" % indent)
    return pattern


def _kept_imports(text: bytes, start: int, end: int, inner: int) -> list[tuple[int, int]] | None:
    """The statements of the block of lines ``[start, end)`` (statements indented
    ``inner``) that hold an import, as sorted line spans: the index extracts imports at
    any depth. An import statement of the block's own level is kept alone; any other
    line with the word ``import`` (in an ``if`` block, after ``if x:`` on one line, in a
    string or a comment) keeps the whole statement of the block's level around it.
    None if the block is not what it seems."""
    out: list[tuple[int, int]] = []
    find, rfind = text.find, text.rfind
    prefix = b" " * inner
    i = _IMPORT_WORD.search(text, start, end)
    while i is not None:
        word = i.start()
        if text[word - 1 : word] in _NAME_BYTES:
            i = _IMPORT_WORD.search(text, i.end(), end)
            continue  # part of a longer name
        ls = rfind(b"\n", 0, word) + 1
        if text.startswith(prefix, ls) and _IMPORT_STATEMENT.match(text, ls + inner):
            stmt = ls
            stmt_end = find(b"\n", stmt)
            if b"(" in text[stmt:stmt_end]:
                stmt_end = find(b"\n", find(b")", stmt))
            if stmt_end < 0 or stmt_end >= end:
                return None
            stmt_end += 1
        else:
            line_end = find(b"\n", word)
            if line_end < 0 or line_end >= end:
                return None
            stmt = _last_statement(text, start, line_end + 1, inner)
            if stmt < 0:
                return None
            stmt_end = _next_statement(text, line_end, end, inner)
        if out and stmt <= out[-1][1]:
            out[-1] = (out[-1][0], max(out[-1][1], stmt_end))
        else:
            out.append((stmt, stmt_end))
        if stmt_end >= end:
            break
        i = _IMPORT_WORD.search(text, stmt_end, end)
    return out


def _next_statement(text: bytes, pos: int, end: int, inner: int) -> int:
    """The start of the first line after ``pos`` that starts a statement of a block
    indented ``inner`` (not a clause such as ``else:``, not a closing bracket), or
    ``end``."""
    ends = _ends_body(inner)
    while True:
        e = ends.search(text, pos, end)
        if e is None:
            return end
        ls = e.start() + 1
        first = text[ls + inner : ls + inner + 1]
        if text[ls : ls + inner] == b" " * inner and (
            first in _MAYBE_CONTINUES and _CONTINUES.match(text, ls + inner)
        ):
            pos = ls
            continue
        return ls


def _block_end(text: bytes, indent: int, newline: int) -> int:
    """Where the block after the line ending at ``newline`` ends: the start of the next
    line of code indented ``indent`` or less, or the end of the text."""
    e = _ends_body(indent).search(text, newline)
    return e.start() + 1 if e is not None else len(text)


def _header_end(text: bytes, line_start: int, limit: int) -> int:
    """The start of the line after the header of a compound statement starting at
    ``line_start`` (its brackets balanced, its last line ending with a colon), or -1
    when the statement is not such a header before ``limit``."""
    find = text.find
    nl = find(b"\n", line_start)
    lines = 1
    while 0 <= nl < limit and not _balanced(text, line_start, nl):
        if lines == MAX_SIGNATURE_LINES:
            return -1
        nl = find(b"\n", nl + 1)
        lines += 1
    if nl < 0 or nl >= limit:
        return -1
    if text[nl - 1 : nl] != b":" and not text[line_start:nl].rstrip().endswith(b":"):
        return -1  # a simple statement, a one-line body, or a comment after the colon
    return nl + 1


def _last_statement(text: bytes, start: int, end: int, inner: int) -> int:
    """The start of the last statement of the block of lines ``[start, end)`` whose
    statements are indented ``inner``: its last line of that indentation that is neither
    a clause (``else:``) nor a closing bracket; -1 if there is none."""
    rfind = text.rfind
    stop = end - 1  # the newline that ends the block's last line
    prefix = b"\n" + b" " * inner
    while stop > start:
        # The last line indented at least `inner`, then whether it is exactly that.
        nl = rfind(prefix, start - 1, stop)
        if nl < 0:
            return -1
        ls = nl + 1
        stop = nl
        first = text[ls + inner : ls + inner + 1]
        if first in _NOT_CODE or (first in _MAYBE_CONTINUES and _CONTINUES.match(text, ls + inner)):
            continue
        return ls
    return -1


def _cut_block(
    text: bytes, start: int, end: int, inner: int, out: list[tuple[int, int]], string_tail: bool
) -> bool:
    """Cut the block of lines ``[start, end)`` (statements indented ``inner``) down to its
    last statement and its imports, then cut inside each clause of that last statement.
    Appends the spans cut to ``out``; False (and nothing appended) if nothing can be.
    ``string_tail`` is false where a last statement that opens with a string would be
    taken for the docstring."""
    last = _last_statement(text, start, end, inner)
    if last < start or _odd_quotes(text, last, end):
        return False  # no statement, or the block's end is inside a string
    spans: list[tuple[int, int]] = []
    if last - start >= MIN_SKIPPED:
        if not (_balanced(text, start, last) or _balanced(text, last, end)) or (
            not string_tail and _STRING_START.match(text, last + inner)
        ):
            return False
        kept = _kept_imports(text, start, last, inner)
        if kept is None:
            return False
        piece = start
        for stmt, stmt_end in kept:
            if stmt > piece:
                spans.append((piece, stmt))
            piece = stmt_end
        if piece < last:
            spans.append((piece, last))
        # Every cut must fall outside strings and backslash continuations: each part
        # between two cuts holds whole triple-quoted strings only.
        edge = start
        for cut_start, cut_end in spans:
            if (
                _odd_quotes(text, edge, cut_start)
                or _odd_quotes(text, cut_start, cut_end)
                or text[cut_start - 2 : cut_start] == b"\\\n"
                or text[cut_end - 2 : cut_end] == b"\\\n"
            ):
                return False
            edge = cut_end
    if end - last >= MIN_BODY:
        _cut_clauses(text, last, end, inner, spans)
    out.extend(spans)
    return bool(spans)


def _odd_quotes(text: bytes, start: int, end: int) -> bool:
    """Whether ``text[start:end]`` opens or closes a triple-quoted string."""
    count = text.count
    return bool(count(b'"""', start, end) % 2 or count(b"'''", start, end) % 2)


def _cut_clauses(text: bytes, line: int, end: int, indent: int, out: list[tuple[int, int]]) -> None:
    """Cut inside the blocks of the compound statement at ``line`` (indented ``indent``,
    ending at ``end``): each clause (``if``, ``elif``, ``else``, ...) keeps its header and
    its own last statement."""
    while line < end:
        header_end = _header_end(text, line, end)
        if header_end < 0:
            return
        block_end = min(_block_end(text, indent, header_end - 1), end)
        if block_end - header_end >= MIN_BODY:
            body = _BODY.match(text, header_end)
            assert body is not None  # the pattern matches the empty string
            inner, first = len(body.group(1)), body.start(1)
            if inner > indent and first < block_end:
                _cut_block(text, first, block_end, inner, out, True)
        line = block_end


def skipped_spans(data: bytes) -> list[tuple[int, int]]:
    """Byte spans ``(start, end)`` of ``data`` (Python source) that a parse for the index
    may skip. Both ends are line starts; the spans are sorted and disjoint."""
    if any(c in data for c in _UNMODELLED):
        return []
    text = b"\n" + data  # offsets in ``text`` are one more than in ``data``
    out: list[tuple[int, int]] = []
    find, rfind = text.find, text.rfind
    search_def = _DEF_WORD.search
    pos = 0
    while True:
        m = search_def(text, pos)
        if m is None:
            break
        pos = m.end()
        # Only a `def` that starts its line (after `async`) starts a function.
        line_start = rfind(b"\n", 0, pos) + 1
        lead = text[line_start : pos - 4]
        code = lead.lstrip(b" ")
        if code and not _ASYNC.fullmatch(code):
            continue
        indent = len(lead) - len(code)
        end = _block_end(text, indent, pos)
        if text[end + indent : end + indent + 1] in _CLOSERS:
            # A signature whose closing bracket is on a line of its own (black's style):
            # the body starts after it.
            header_end = _header_end(text, line_start, len(text))
            if header_end < 0:
                continue
            end = _block_end(text, indent, header_end - 1)
            if end - header_end < MIN_BODY:
                continue
        else:
            if end - pos < MIN_BODY:
                continue
            header_end = _header_end(text, line_start, end)
            if header_end < 0:
                continue
        body = _BODY.match(text, header_end)
        assert body is not None  # the pattern matches the empty string
        inner, first = len(body.group(1)), body.start(1)
        if inner <= indent or first >= end:
            continue
        quote = body.group(2)
        spans: list[tuple[int, int]] = []
        if quote is None:
            start = first
        elif len(quote) == 3:  # a docstring: its first and last lines are kept
            close = find(quote, body.end())
            line_end = find(b"\n", close)
            if (
                close < 0
                or line_end < 0
                or line_end + 1 >= end
                or text[close - 1 : close] == b"\\"
                or text[close + 3 : line_end].strip()
            ):
                continue
            start = line_end + 1
            inside = find(b"\n", body.end()) + 1
            closing_line = rfind(b"\n", 0, close) + 1
            if closing_line > inside:
                spans.append((inside, closing_line))
                pos = closing_line
        else:  # a one-quote docstring: kept when it is the whole of its line
            line_end = find(b"\n", first)
            line = text[first:line_end].rstrip(b" ")
            if (
                line_end < 0
                or line_end + 1 >= end
                or line[-1:] != quote
                or line[-2:-1] == b"\\"
                or b'"""' in line
                or b"'''" in line
                or not _balanced(line)
            ):
                continue
            start = line_end + 1
        if _cut_block(text, start, end, inner, spans, quote is not None):
            pos = end - 1
        out.extend(spans)
    prev = 0
    for start, end in out:  # cheap, and what included_ranges relies on
        if start < prev or end <= start:
            return []
        prev = end
    return [(start - 1, end - 1) for start, end in out]


def included_ranges(data: bytes, spans: list[tuple[int, int]]) -> list[Range]:
    """The ranges of ``data`` outside ``spans`` (from ``skipped_spans``), for a tree-sitter
    parser's ``included_ranges``."""
    out: list[Range] = []
    count = data.count
    prev = row = 0
    for start, end in spans:
        start_row = row + count(b"\n", prev, start)
        if start > prev:
            out.append(Range(Point(row, 0), Point(start_row, 0), prev, start))
        row = start_row + count(b"\n", start, end)
        prev = end
    last_row = row + count(b"\n", prev)
    last_column = len(data) - (data.rfind(b"\n") + 1)
    out.append(Range(Point(row, 0), Point(last_row, last_column), prev, len(data)))
    return out
