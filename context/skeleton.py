"""Python files parsed for the index without the middles of their function bodies.

From inside a Python function the index keeps its docstring, its imports (at any depth)
and where it ends (``context.lang.python.QUERY``); nothing else. Yet parsing those
bodies is most of what a cold index of a Python tree costs: three quarters of Django's
bytes are function bodies. ``skipped_spans`` finds, in one lexical pass over the bytes,
the parts of function bodies that cannot change what the index extracts: after the
docstring (or from the first statement) up to the body's last statement, less the
statements that hold an import; inside that last statement, the same again for each of
its clauses; and the inside of a multi-line docstring. ``included_ranges`` turns them
into the ranges a tree-sitter parser is told to read: positions in the tree stay those
of the whole file, and each function still ends where its last statement ends.

The pass guesses from a few bytes at a time (indentation, bracket and quote counts),
and a guess can be fooled: a triple quote in a comment, a ``def`` line inside a string.
So the guess is checked once the cut file is parsed (``consistent``): each cut must fall
between whole statements of one block in the tree, and the bytes cut, read with their
strings and comments, must be whole statements (no string left open, brackets balanced,
no import, no continuation into the next line). Where a check fails, or the cut parse
shows a syntax error, the caller parses the file again whole
(``context.symbols.parse_skeleton``): a wrong guess costs time, not contents. Files with
tabs, form feeds or carriage returns are parsed whole.
"""

from __future__ import annotations

import re

from tree_sitter import Point, Range, Tree

# Indentation the pass does not model (tabs, form feeds) or line ends it does not (CR):
# files with any are parsed whole. So are files with a line of only a backslash, which
# tree-sitter reads as the end of a block where CPython does not.
_UNMODELLED = (b"\t", b"\r", b"\f")
_BACKSLASH_LINE = re.compile(rb"\n *\\\n")
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

# A span to skip: (start, end, inside a docstring).
Span = tuple[int, int, bool]

# A signature longer than this is left alone (it bounds the pass on unbalanced text).
MAX_SIGNATURE_LINES = 64
# Clauses nested deeper than this are not cut into (CPython allows 100 levels).
MAX_NESTING = 50
# The block-end searches scan at most this many times the file's size.
SCAN_BUDGET = 4
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
    text: bytes,
    start: int,
    end: int,
    inner: int,
    out: list[Span],
    string_tail: bool,
    depth: int = 0,
) -> bool:
    """Cut the block of lines ``[start, end)`` (statements indented ``inner``) down to its
    last statement and its imports, then cut inside each clause of that last statement.
    Appends the spans cut to ``out``; False (and nothing appended) if nothing can be.
    ``string_tail`` is false where a last statement that opens with a string would be
    taken for the docstring."""
    last = _last_statement(text, start, end, inner)
    if last < start or _odd_quotes(text, last, end):
        return False  # no statement, or the block's end is inside a string
    spans: list[Span] = []
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
                spans.append((piece, stmt, False))
            piece = stmt_end
        if piece < last:
            spans.append((piece, last, False))
        # Every cut must fall outside strings and backslash continuations: each part
        # between two cuts holds whole triple-quoted strings only.
        edge = start
        for cut_start, cut_end, _ in spans:
            if (
                _odd_quotes(text, edge, cut_start)
                or _odd_quotes(text, cut_start, cut_end)
                or text[cut_start - 2 : cut_start] == b"\\\n"
                or text[cut_end - 2 : cut_end] == b"\\\n"
            ):
                return False
            edge = cut_end
    if end - last >= MIN_BODY and depth < MAX_NESTING:
        _cut_clauses(text, last, end, inner, spans, depth + 1)
    out.extend(spans)
    return bool(spans)


def _odd_quotes(text: bytes, start: int, end: int) -> bool:
    """Whether ``text[start:end]`` opens or closes a triple-quoted string."""
    count = text.count
    return bool(count(b'"""', start, end) % 2 or count(b"'''", start, end) % 2)


def _cut_clauses(
    text: bytes, line: int, end: int, indent: int, out: list[Span], depth: int
) -> None:
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
                _cut_block(text, first, block_end, inner, out, True, depth)
        line = block_end


def skipped_spans(data: bytes) -> list[Span]:
    """Byte spans ``(start, end, in_string)`` of ``data`` (Python source) that a parse for
    the index may skip; ``in_string`` for those inside a docstring. Both ends are line
    starts; the spans are sorted and disjoint. What they are is a guess, checked against
    the parse by ``consistent``."""
    if any(c in data for c in _UNMODELLED):
        return []
    text = b"\n" + data  # offsets in ``text`` are one more than in ``data``
    if b"\\\n" in data and _BACKSLASH_LINE.search(text):
        return []
    out: list[Span] = []
    # Bytes the block-end searches may scan, in all: nested functions inside a body that
    # is not cut are visited on their own, and a pathological nest must not make the
    # pass superlinear.
    budget = SCAN_BUDGET * len(text) + (1 << 20)
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
        budget -= end - pos
        if budget < 0:
            break
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
        spans: list[Span] = []
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
                spans.append((inside, closing_line, True))
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
    for start, end, _ in out:  # cheap, and what included_ranges relies on
        if start < prev or end <= start:
            return []
        prev = end
    return [(start - 1, end - 1, in_string) for start, end, in_string in out]


def included_ranges(data: bytes, spans: list[Span]) -> list[Range]:
    """The ranges of ``data`` outside ``spans`` (from ``skipped_spans``), for a tree-sitter
    parser's ``included_ranges``."""
    out: list[Range] = []
    count = data.count
    prev = row = 0
    for start, end, _ in spans:
        start_row = row + count(b"\n", prev, start)
        if start > prev:
            out.append(Range(Point(row, 0), Point(start_row, 0), prev, start))
        row = start_row + count(b"\n", start, end)
        prev = end
    last_row = row + count(b"\n", prev)
    last_column = len(data) - (data.rfind(b"\n") + 1)
    out.append(Range(Point(row, 0), Point(last_row, last_column), prev, len(data)))
    return out


# Strings and comments, removed to check what a cut removes; an unclosed triple quote,
# or the rest of a line after an unclosed one-quote string, is kept (group `open`) so
# that the check sees it (and no failed match is tried again along the line). One-quote
# strings cannot start a triple quote (`"(?!"")`) nor span lines (but for an escaped
# newline).
_STRINGS_AND_COMMENTS = re.compile(
    rb"#[^\n]*"
    rb'|"""[^"\\]*(?:(?:\\.|"(?!""))[^"\\]*)*"""'
    rb"|'''[^'\\]*(?:(?:\\.|'(?!''))[^'\\]*)*'''"
    rb'|"(?!"")[^"\\\n]*(?:\\.[^"\\\n]*)*"'
    rb"|'(?!'')[^'\\\n]*(?:\\.[^'\\\n]*)*'"
    rb"|(?P<open>\"\"\"|'''|[\"'][^\n]*)",
    re.S,
)
# A cut that starts with a string statement may have removed a docstring.
_STRING_FIRST = re.compile(rb"(?: *(?:#[^\n]*)?\n)* *" + _STRING_START.pattern)
# The nodes a cut between statements may fall in: a block, or a compound statement
# whose block the cut starts.
_BETWEEN_STATEMENTS = frozenset(
    {
        "block",
        "function_definition",
        "class_definition",
        "if_statement",
        "elif_clause",
        "else_clause",
        "for_statement",
        "while_statement",
        "try_statement",
        "except_clause",
        "except_group_clause",
        "finally_clause",
        "with_statement",
        "match_statement",
        "case_clause",
    }
)
_IN_STRING = frozenset({"string", "string_content"})
# An f-string opener: since Python 3.12 a replacement field may hold any quotes and span
# lines (PEP 701), which no regex here reads. `_PREFIXED_QUOTE` finds the quotes that
# follow an f within two bytes, fast (it starts at the quote); `_FSTRING` then says
# whether that is an f-string opener.
_FSTRING = re.compile(rb"(?<![\w])(?:[fF][rRbB]?|[rRbB][fF])['\"]")
_PREFIXED_QUOTE = re.compile(rb"['\"](?:(?<=[fF].)|(?<=[fF][rRbB].)|(?<=[rRbB][fF].))", re.S)
_PREFIX_BYTES = frozenset(bytes([c]) for c in b"rRbBfF")
_QUOTES = frozenset((b'"', b"'"))


def _plain_fstrings(data: bytes, start: int, end: int) -> bool:
    """Whether every f-string opened in ``data[start:end]`` (read from a clean start)
    closes there as it would before Python 3.12: on its line for one quote, and with no
    quote of its own kind in a replacement field (the braces before its next such quote
    balance). Since 3.12 a field may hold any quotes and span lines (PEP 701); the checks
    read strings as before, so a cut holding such an f-string is refused. Strings are
    read in order, so that a quote inside a string or a comment (`"f"`, `"%f"`) is no
    opener; the reading is exact up to the first f-string of 3.12's kind, where it
    stops."""
    if _PREFIXED_QUOTE.search(data, start, end) is None:
        return True
    find = data.find
    for token in _STRINGS_AND_COMMENTS.finditer(data, start, end):
        at = token.start()
        if data[at : at + 1] not in _QUOTES:
            continue  # a comment
        opener = at - 2 if data[at - 2 : at - 1] in _PREFIX_BYTES else at - 1
        if opener < start or not _FSTRING.match(data, opener):
            continue
        delimiter = data[at : at + 3]
        if delimiter not in (b'"""', b"'''"):
            delimiter = data[at : at + 1]
            line_end = find(b"\n", at, end)
            close = find(delimiter, at + 1, line_end if line_end >= 0 else end)
        else:
            close = find(delimiter, at + 3, end)
        if close < 0 or data[close - 1 : close] == b"\\":
            return False
        body = data[at + len(delimiter) : close]
        if body.count(b"{") != body.count(b"}"):
            return False
    return True


def consistent(tree: Tree, data: bytes, spans: list[Span]) -> bool:
    """Whether the tree parsed without ``spans`` is the whole file's tree less whole
    statements (and docstring lines): then what ``extract`` finds in it is what it would
    find in the whole file.

    Each cut is checked in the tree and in the bytes. In the tree it must fall between
    statements of one block (or inside the docstring it was made in): nothing spans it,
    so the bytes before it read the same in the file and in the tree, and the file is
    outside any string or bracket there. In the bytes, no string may be left open by
    what is cut (only a triple-quoted one can span lines: where a cut holds a triple
    quote, its strings and comments are read) nor continued into the next line by a
    backslash, and the cut may not start with a string statement (a docstring). A
    bracket it leaves open is closed after it: in kept bytes, where the tree would show
    a syntax error, or in a later cut, with only statements around an import word kept
    between (the word then in a string or comment, in the file and in the tree alike);
    ``skipped_spans`` keeps every import word. By induction over the cuts, in
    order, the file and the tree then agree on every byte kept. ``skipped_spans`` only
    guesses; this is what makes a wrong guess cost a second parse instead of wrong
    contents."""
    root = tree.root_node
    find = data.find
    for start, end, in_string in spans:
        node = root.descendant_for_byte_range(max(start - 1, 0), end)
        if node is None:
            return False
        triple = find(b'"""', start, end) >= 0 or find(b"'''", start, end) >= 0
        if in_string:
            if node.type not in _IN_STRING or triple:
                return False
            if find(b"{", start, end) >= 0 or find(b"}", start, end) >= 0:
                string = node if node.type == "string" else node.parent
                if string is None or _FSTRING.match(data, string.start_byte):
                    return False  # an f-string's fields may hold quotes: not read here
            continue
        if (
            node.type not in _BETWEEN_STATEMENTS
            or data[end - 2 : end] == b"\\\n"
            or _STRING_FIRST.match(data, start)
            or _STRING_FIRST.match(data, end)  # (it could become the docstring)
        ):
            return False
        # An f-string's field needs a brace: most cuts have none, and skip the search.
        if find(b"{", start, end) >= 0 and not _plain_fstrings(data, start, end):
            return False
        if triple:
            rest = _STRINGS_AND_COMMENTS.sub(rb"\g<open>", data[start:end])
            if b'"' in rest or b"'" in rest:
                return False
    return True
