"""Syntax errors of our own: what tree-sitter finds wrong in a file, said as a person would.

For the languages the index parses, a file's tree holds ERROR and MISSING nodes where
the parser gave up or invented a token. Each becomes one ``SyntaxProblem`` with a
precise range and a message a person understands ("missing `)`", "`{` was never
closed", "unexpected `end`", "expected `:`"); errors that only follow from another (the
rest of a function whose `{` was never closed) are dropped. tree-sitter's Python grammar
accepts misplaced indentation, so Python's blocks are checked as CPython would
("unexpected indent", "expected an indented block").

A Python file is parsed in parts, one per top-level statement (see ``python_cuts``): a
bracket left open is then reported where it opens, as CPython does, instead of swallowing
the rest of the file, and an edit re-parses its own statement only. ``SyntaxTrees``
keeps the parts of each open document and re-parses the edited ones incrementally (under
a millisecond or two on a 2,000-line file where a parse from scratch takes 10–20 ms, and
50 ms with a bracket left open), so the diagnostics after a keystroke stay cheap. Plain
Python: no protocol types here.
"""

from __future__ import annotations

import ast
import bisect
import re
import threading
from collections.abc import Iterator, Sequence
from dataclasses import dataclass

from tree_sitter import Node, Point, Tree

from context.languages import has_grammar, parser
from context.open_documents import changed_span, edit_between
from context.symbols import file_symbols
from context.types import Definition

# Opening and closing brackets, and the words that open a block closed by `end` (Lua).
_OPENERS = {"(": ")", "[": "]", "{": "}"}
_CLOSERS = {v: k for k, v in _OPENERS.items()}
_END_OPENERS = frozenset({"function", "do", "then", "if", "while", "for", "repeat"})
# A flooded ERROR node (a file of binary junk) is looked at this many tokens deep.
MAX_TOKENS = 4000
# Python errors are confirmed by CPython on top-level statements up to this long.
PYTHON_CHECK_LINES = 400
# Results kept by the text they are about (top-level statements, CPython's verdicts).
CACHE_ENTRIES = 20000
_BLOCKS: dict[int, list[_Raw]] = {}
_ACCEPTED: dict[int, bool] = {}
# At most this many problems are reported per file (the first ones matter).
MAX_PROBLEMS = 100
# What the Python block checks say (modelled on CPython's IndentationError: not checked
# again with CPython).
_PY_BLOCK_MESSAGES = ("unexpected indent", "unindent does not match", "expected an indented")
# Python statements that open a block with `:`.
_PY_HEADERS = frozenset(
    {
        "def",
        "class",
        "if",
        "elif",
        "else",
        "while",
        "for",
        "with",
        "try",
        "except",
        "finally",
        "async",
        "match",
        "case",
    }
)
# Python nodes whose children may hold blocks (statements, clauses); expressions never do.
_PY_CONTAINERS = frozenset(
    {
        "module",
        "block",
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
        "function_definition",
        "class_definition",
        "decorated_definition",
        "match_statement",
        "case_clause",
    }
)


@dataclass(frozen=True, slots=True)
class SyntaxProblem:
    """One syntax error. Lines are 0-based, columns in code points of the line.

    ``focus_start``..``focus_end`` are the lines a fix should change: the problem's own
    line, or for a bracket never closed the lines from the bracket to where it should
    close.
    """

    line: int
    column: int
    end_line: int
    end_column: int
    message: str
    focus_start: int
    focus_end: int

    def key(self) -> tuple[str, int, int]:
        return (self.message, self.line, self.column)


# C and C++ files are full of macros that tree-sitter cannot expand (`__BEGIN_DECLS`,
# `EXPORT_SYMBOL(...)`), and TypeScript grows syntax faster than its grammar (`import`
# types, `const` type parameters): most of tree-sitter's errors there are not errors.
# Only brackets never closed or never opened are reported, when the file's brackets
# really do not balance.
_BRACKETS_ONLY = frozenset({"c", "cpp", "typescript", "tsx"})


def problems_of_tree(
    tree: Tree, source: bytes, language: str, *, confirm: bool = True
) -> list[SyntaxProblem]:
    """The syntax errors of a parse of ``source``, in order. ``confirm``: drop those that
    CPython's parser, or JavaScript's semicolon insertion, says are not errors (what the
    user sees; a comparison of two parses can do without)."""
    found: list[_Raw] = []
    root = tree.root_node
    if root.has_error:
        pending = [root]
        while pending and len(found) < MAX_PROBLEMS:
            node = pending.pop()
            if node.is_missing:
                if not (node.type == ";" and language in _ASI and _ends_line(node, source)):
                    found.append(_missing(node))
            elif node.is_error:
                found.append(_error(node, source, language))
            elif node.has_error:
                pending.extend(reversed(node.children))
    if language == "python" and len(found) < MAX_PROBLEMS:
        found.extend(_python_blocks(root, source))
    # Errors inside a block whose closing bracket is missing follow from it (the parser
    # read the rest of the block as something else): only the bracket is reported.
    spans = [(r.start, r.container) for r in found if r.container is not None]
    kept = [
        r
        for r in found
        if r.container is not None
        or not any(start < r.start < end for start, (_, end) in spans if end is not None)
    ]
    kept.sort(key=lambda r: r.start)
    if language in _BRACKETS_ONLY and kept:
        kept = _unbalanced_only(kept, root, source)
    if not kept:
        return []
    lines = _LineIndex(source)
    out: list[SyntaxProblem] = []
    seen: set[tuple[str, int, int]] = set()
    for raw in kept[:MAX_PROBLEMS]:
        problem = raw.problem(lines)
        if (
            confirm
            and language in _ASI_CHECKED
            and problem.message.startswith(("unexpected", "missing `;`"))
            and _semicolon_explains(tree, source, language, problem.line)
        ):
            continue  # JavaScript inserts that `;` itself (tree-sitter does not)
        if (
            confirm
            and language == "python"
            and not problem.message.startswith(_PY_BLOCK_MESSAGES)
            and _python_accepts(root, source, problem.focus_start, problem.end_line)
        ):
            continue  # tree-sitter's grammar is wrong there: CPython reads it
        if problem.key() not in seen:
            seen.add(problem.key())
            out.append(problem)
    return out


def _semicolon_explains(tree: Tree, source: bytes, language: str, row: int) -> bool:
    """Whether a `;` at the end of line ``row`` (or the one before) leaves no error near
    it: JavaScript's automatic semicolon insertion makes such code valid."""
    lines = source.split(b"\n")
    for at in (row, row - 1):
        if at < 0 or at >= len(lines):
            continue
        offset = sum(len(line) + 1 for line in lines[:at]) + len(lines[at].rstrip(b"\r"))
        fixed = source[:offset] + b";" + source[offset:]
        copy = tree.copy()
        point = _point(source, offset)
        copy.edit(
            start_byte=offset,
            old_end_byte=offset,
            new_end_byte=offset + 1,
            start_point=point,
            old_end_point=point,
            new_end_point=Point(point.row, point.column + 1),
        )
        root = parser(language).parse(fixed, copy).root_node
        if not _errors_near(root, max(0, at - 1), at + 2):
            return True
    return False


def _errors_near(root: Node, first: int, last: int) -> bool:
    """Whether an ERROR or MISSING node starts on rows ``first..last``."""
    pending = [root]
    while pending:
        node = pending.pop()
        if node.start_point.row > last or node.end_point.row < first:
            continue
        if node.is_error or node.is_missing:
            if first <= node.start_point.row <= last:
                return True
        if node.has_error:
            pending.extend(node.children)
    return False


def _unbalanced_only(found: list[_Raw], root: Node, source: bytes) -> list[_Raw]:
    """The bracket problems among ``found``, if the file's brackets do not balance."""
    counts = _bracket_balance(source)
    out = []
    for raw in found:
        bracket = raw.message[1:2]
        if raw.message.startswith(f"`{bracket}` was never closed") and counts.get(bracket, 0) > 0:
            out.append(raw)
        elif (
            raw.message.startswith("unmatched")
            and counts.get(_CLOSERS.get(raw.message[11:12], ""), 0) < 0
        ):
            out.append(raw)
    return out


_LEXEMES = re.compile(
    rb"//[^\n]*|/\*.*?(?:\*/|\Z)|\"(?:\\.|[^\"\\\n])*\"?|'(?:\\.|[^'\\\n])*'?"
    rb"|`(?:\\.|[^`\\])*`?|^[ \t]*#(?:\\\r?\n|[^\n])*|[()\[\]{}]",
    re.DOTALL | re.MULTILINE,
)


def _bracket_balance(source: bytes) -> dict[str, int]:
    """Opened minus closed brackets of each kind, outside comments, strings, character
    literals and preprocessor lines (whose macros may open what another closes)."""
    counts = {"(": 0, "[": 0, "{": 0}
    for match in _LEXEMES.finditer(source):
        kind = match.group().decode("latin-1")
        if kind in counts:
            counts[kind] += 1
        elif kind in _CLOSERS:
            counts[_CLOSERS[kind]] -= 1
    return counts


def _python_accepts(root: Node, source: bytes, line: int, last: int) -> bool:
    """Whether CPython's parser accepts the top-level statements around lines
    ``line..last`` (a few grammar corners tree-sitter gets wrong). Only those statements
    are parsed, from where the tree's top-level statement starts: cheap, and not fooled
    by a line at column 0 inside a string."""
    top, top_row, end, end_row = 0, 0, len(source), -1
    for child in root.children:
        if child.start_point.row <= line:
            if child.start_point.row != top_row or not top:
                top_row = child.start_point.row
                top = source.rfind(b"\n", 0, child.start_byte) + 1  # (its line's start)
        elif child.start_point.row > last:
            end, end_row = child.start_byte, child.start_point.row
            break
    if end_row < 0:
        end_row = top_row + source.count(b"\n", top)
    if end_row - top_row > PYTHON_CHECK_LINES:
        return False
    chunk = source[top:end]
    key = hash(chunk)
    accepted = _ACCEPTED.get(key)
    if accepted is None:
        try:
            compile(chunk, "<chunk>", "exec", ast.PyCF_ONLY_AST, dont_inherit=True)
            accepted = True
        except (SyntaxError, ValueError, MemoryError, RecursionError):
            accepted = False
        if len(_ACCEPTED) > CACHE_ENTRIES:
            _ACCEPTED.clear()
        _ACCEPTED[key] = accepted
    return accepted


# ---- what each error node means ----------------------------------------------------------


@dataclass(slots=True)
class _Raw:
    start: int  # byte offsets of the range shown
    end: int
    message: str
    focus: tuple[int, int]  # byte offsets of the lines a fix should change
    container: tuple[int, int | None] | None = None  # an unclosed block's byte span

    def problem(self, lines: _LineIndex) -> SyntaxProblem:
        line, column = lines.position(self.start)
        end_line, end_column = lines.position(self.end)
        return SyntaxProblem(
            line,
            column,
            end_line,
            end_column,
            self.message,
            lines.position(self.focus[0])[0],
            lines.position(self.focus[1])[0],
        )


def _missing(node: Node) -> _Raw:
    kind = node.type
    at = node.start_byte
    parent = node.parent
    if parent is not None and (kind in _CLOSERS or kind == "end"):
        opener = _opener_of(parent, node, kind)
        if opener is not None:
            shown = f"`{opener.type}` was never closed"
            return _Raw(
                opener.start_byte,
                opener.end_byte,
                shown + (" (missing `end`)" if kind == "end" else ""),
                (opener.start_byte, at),
                container=(opener.start_byte, at),
            )
    name = f"`{kind}`" if not node.is_named else kind.replace("_", " ")
    return _Raw(at, at, f"missing {name}", (at, at))


def _opener_of(parent: Node, missing: Node, kind: str) -> Node | None:
    """The token the missing closer ``kind`` should have closed: the last unmatched
    opener before it among its siblings (for `end`, the block's first word)."""
    if kind == "end":
        first = parent.children[0] if parent.children else None
        return first if first is not None and first.type in _END_OPENERS else None
    want = _CLOSERS[kind]
    depth = 0
    before = []
    for child in parent.children:
        if child == missing:
            break
        before.append(child)
    for child in reversed(before):
        if child.type == kind:
            depth += 1
        elif child.type == want:
            if depth == 0:
                return child
            depth -= 1
    return None


def _error(node: Node, source: bytes, language: str) -> _Raw:
    tokens = list(_tokens(node))
    if not tokens:  # an ERROR with no token in it (junk the lexer skipped)
        return _Raw(node.start_byte, node.end_byte, "syntax error", _span(node))
    # A bracket left open, or one closed that was never opened.
    stack: list[Node] = []
    for token in tokens:
        if token.type in _OPENERS:
            stack.append(token)
        elif token.type in _CLOSERS:
            want = _CLOSERS[token.type]
            at = next((i for i in range(len(stack) - 1, -1, -1) if stack[i].type == want), -1)
            if at < 0:
                return _Raw(
                    token.start_byte, token.end_byte, f"unmatched `{token.type}`", _span(token)
                )
            if at < len(stack) - 1:  # the brackets opened after its opener never closed
                return _unclosed(stack[at + 1], node)
            stack.pop()
    if stack:
        return _unclosed(stack[0], node)
    if language == "lua":
        block = _lua_unclosed(tokens)
        if block is not None:
            return _Raw(
                block.start_byte,
                block.end_byte,
                f"`{block.type}` was never closed (missing `end`)",
                (block.start_byte, node.end_byte),
            )
    if language == "python":
        colon = _python_missing_colon(tokens, source)
        if colon is not None:
            return colon
    first = tokens[0]
    last = tokens[-1]
    if language in _SEMICOLON_LANGUAGES and _ends_line(last, source):
        # `let x = 1` then a new statement: tree-sitter blames a token; the `;` is missing.
        line_start = source.rfind(b"\n", 0, first.start_byte) + 1
        line = source[line_start : last.end_byte].rstrip()
        if first.start_point.row == last.start_point.row and line[-1:] not in b";{}(,[:":
            return _Raw(last.end_byte, last.end_byte, "missing `;`", _span(last))
    before = _token_before(node, source)
    if before is not None and _starts_line(first, source) and _dangles(before, source):
        # `x :=` then a new line: what is missing belongs to the line above.
        return _Raw(
            before.start_byte,
            before.end_byte,
            f"incomplete code after `{_shown(before, source)}`",
            _span(before),
        )
    # Half-typed code: the error ends with an operator or a dot at the end of a line.
    if _dangles(last, source):
        return _Raw(
            last.start_byte,
            last.end_byte,
            f"incomplete code after `{_shown(last, source)}`",
            _span(last),
        )
    return _Raw(
        first.start_byte,
        first.end_byte,
        f"unexpected `{_shown(first, source)}`",
        _span(first),
    )


# Languages that insert a `;` missing at the end of a line themselves.
_ASI = frozenset({"javascript", "typescript", "tsx", "go"})
_ASI_CHECKED = frozenset({"javascript", "typescript", "tsx"})
# Languages whose statements end with `;` (no automatic insertion).
_SEMICOLON_LANGUAGES = frozenset({"rust", "java", "c", "cpp"})
# Tokens that may end a line without anything missing after them.
_LINE_ENDERS = frozenset({",", ";", ":", "{", "(", "[", "end", "then", "do", "else", "}"})


def _dangles(token: Node, source: bytes) -> bool:
    """Whether ``token`` is an operator or punctuation left at the end of its line."""
    return (
        not token.is_named
        and token.type not in _CLOSERS
        and token.type not in _LINE_ENDERS
        and not token.type.isalpha()
        and _ends_line(token, source)
    )


def _token_before(node: Node, source: bytes) -> Node | None:
    """The token just before ``node`` (None at the start of the file)."""
    at = node.start_byte
    while at > 0 and source[at - 1 : at] in (b" ", b"\t", b"\n", b"\r"):
        at -= 1
    if at == 0:
        return None
    root = node
    while root.parent is not None:
        root = root.parent
    leaf = root.descendant_for_byte_range(at - 1, at)
    return leaf if leaf is not None and leaf.child_count == 0 else None


def _lua_unclosed(tokens: Sequence[Node]) -> Node | None:
    """The first Lua block (`function`, `if`, `do`, `repeat`) with no `end`/`until`."""
    stack: list[Node] = []
    for token in tokens:
        kind = token.type
        if kind in ("function", "if", "repeat") or (
            kind == "do" and not (stack and stack[-1].type in ("while", "for"))
        ):
            stack.append(token)
        elif kind in ("while", "for"):
            stack.append(token)
        elif kind in ("end", "until") and stack:
            stack.pop()
    return stack[0] if stack else None


def _unclosed(opener: Node, error: Node) -> _Raw:
    return _Raw(
        opener.start_byte,
        opener.end_byte,
        f"`{opener.type}` was never closed",
        (opener.start_byte, error.end_byte),
    )


def _python_missing_colon(tokens: Sequence[Node], source: bytes) -> _Raw | None:
    """`def f(x)` or `if x` without its colon: where the colon should be."""
    for i, token in enumerate(tokens):
        if token.type not in _PY_HEADERS or not _starts_line(token, source):
            continue
        row = token.start_point.row
        depth = 0
        last = token
        for following in tokens[i + 1 :]:
            if following.start_point.row != row and depth == 0:
                break
            if following.type in _OPENERS:
                depth += 1
            elif following.type in _CLOSERS:
                depth -= 1
            elif following.type == ":" and depth == 0:
                break
            last = following
        else:
            following = None
        if following is not None and following.type == ":":
            continue
        return _Raw(last.end_byte, last.end_byte, "expected `:`", _span(token))
    return None


def _tokens(node: Node, limit: int = MAX_TOKENS) -> Iterator[Node]:
    """The leaves under ``node``, in order (at most ``limit``)."""
    count = 0
    pending = [node]
    while pending and count < limit:
        current = pending.pop()
        if current.child_count == 0:
            if current.end_byte > current.start_byte:
                count += 1
                yield current
        else:
            pending.extend(reversed(current.children))


def _shown(token: Node, source: bytes) -> str:
    text = source[token.start_byte : token.end_byte].decode("utf-8", "replace")
    text = text.split("\n", 1)[0]
    return text if len(text) <= 20 else text[:19] + "…"


def _span(node: Node) -> tuple[int, int]:
    return (node.start_byte, node.end_byte)


def _starts_line(node: Node, source: bytes) -> bool:
    line_start = source.rfind(b"\n", 0, node.start_byte) + 1
    return not source[line_start : node.start_byte].strip()


def _ends_line(node: Node, source: bytes) -> bool:
    line_end = source.find(b"\n", node.end_byte)
    rest = source[node.end_byte : line_end if line_end >= 0 else len(source)]
    return not rest.strip()


# ---- Python's indentation ---------------------------------------------------------------


def _python_blocks(root: Node, source: bytes) -> list[_Raw]:
    """Statements not where their block starts, and blocks with no statement: what CPython
    reports as IndentationError and tree-sitter accepts. Each top-level statement's
    findings are kept by its text: after an edit only the statement edited is walked."""
    found = list(_misaligned(root, source))
    for child in root.children:
        if child.type not in _PY_CONTAINERS:
            continue
        start = child.start_byte
        key = hash((source[start : child.end_byte], child.start_point.column, root.has_error))
        cached = _BLOCKS.get(key)
        if cached is None:
            cached = [
                _Raw(
                    r.start - start,
                    r.end - start,
                    r.message,
                    (r.focus[0] - start, r.focus[1] - start),
                )
                for r in _blocks_under(child, source)
            ]
            if len(_BLOCKS) > CACHE_ENTRIES:
                _BLOCKS.clear()
            _BLOCKS[key] = cached
        found.extend(
            _Raw(
                r.start + start, r.end + start, r.message, (r.focus[0] + start, r.focus[1] + start)
            )
            for r in cached
        )
    return found


def _blocks_under(top: Node, source: bytes) -> list[_Raw]:
    found: list[_Raw] = []
    pending = [top]
    while pending and len(found) < MAX_PROBLEMS:
        node = pending.pop()
        if node.is_error:
            continue
        if node.type == "block":
            found.extend(_misaligned(node, source))
        for child in node.children:
            if child.type in _PY_CONTAINERS:
                if child.type == "block" and not node.has_error and not _statements(child):
                    found.append(_empty_block(child, node, source))
                pending.append(child)
    return found


def _statements(block: Node) -> list[Node]:
    return [c for c in block.named_children if c.type != "comment" and not c.is_missing]


def _misaligned(block: Node, source: bytes) -> Iterator[_Raw]:
    statements = _statements(block)
    if not statements:
        return
    column = 0 if block.type == "module" else statements[0].start_point.column
    previous: Node | None = None
    for statement in statements:
        if statement.has_error:
            return  # past a syntax error the lines are not where the parser thinks
        # (A statement after `;` shares its line: not a new line's indentation.)
        on_own_line = previous is None or statement.start_point.row > previous.end_point.row
        if on_own_line and statement.start_point.column != column and not statement.is_error:
            deeper = (
                previous is not None
                and _indent_of_line(source, previous.end_point.row) > statement.start_point.column
            )
            message = (
                "unindent does not match any outer indentation level"
                if deeper or statement.start_point.column < column
                else "unexpected indent"
            )
            start = statement.start_byte
            yield _Raw(start, _line_end(source, start), message, (start, start))
            return  # the lines after it are read relative to it: one report per block
        previous = statement


def _empty_block(block: Node, header: Node, source: bytes) -> _Raw:
    what = header.type.replace("_statement", "").replace("_definition", "")
    what = what.replace("_clause", "")
    keyword = header.children[0].type if header.children else what
    nxt = header.next_named_sibling
    at = nxt.start_byte if nxt is not None else block.start_byte
    end = _line_end(source, at) if nxt is not None else at
    return _Raw(
        at,
        end,
        f"expected an indented block after `{keyword}` on line {header.start_point.row + 1}",
        (header.start_byte, at),
    )


def _indent_of_line(source: bytes, row: int) -> int:
    start = 0
    for _ in range(row):
        start = source.find(b"\n", start) + 1
    end = source.find(b"\n", start)
    line = source[start : end if end >= 0 else len(source)]
    return len(line) - len(line.lstrip(b" \t"))


def _line_end(source: bytes, at: int) -> int:
    end = source.find(b"\n", at)
    return (end if end >= 0 else len(source)) - (1 if source[end - 1 : end] == b"\r" else 0)


class _LineIndex:
    """Byte offsets to (line, code point column), for one source."""

    def __init__(self, source: bytes) -> None:
        self.source = source

    def position(self, offset: int) -> tuple[int, int]:
        line = self.source.count(b"\n", 0, offset)
        start = self.source.rfind(b"\n", 0, offset) + 1
        column = len(self.source[start:offset].decode("utf-8", "replace"))
        return line, column


# ---- a Python file in parts ----------------------------------------------------------------
#
# A bracket left open makes tree-sitter read the rest of the file into it: after the `(`
# of `compute(` typed in a 2,000-line file, the re-parse costs as much as a parse from
# scratch (≈50 ms, error recovery over every line below), whatever the old tree. CPython
# reports such a bracket where it opens ("'(' was never closed") and nothing below. So a
# Python file is parsed in parts, one per statement at column 0: a line inside a string
# or a bracket, `else`, `elif`, `except`, `finally` and a decorated definition do not
# start one, except that a `def` or `class` at column 0 inside a bracket never closed does
# (it cannot be inside one: the bracket is the error, and the lines below are not read
# into it). A file without errors is cut only between top-level statements, so its parts
# parse as the whole does; an edit re-parses its own part only. Where parts start depends
# on the text only (never on earlier edits), so after an edit the parts line up again with
# the old ones at the first part start past it.

_PY_LEXEMES = re.compile(
    rb'"""(?:[^"\\]++|\\.|"(?!""))*+(?:"""|\Z)'
    rb"|'''(?:[^'\\]++|\\.|'(?!''))*+(?:'''|\Z)"
    rb'|"(?:[^"\\\n]++|\\.)*+"?'
    rb"|'(?:[^'\\\n]++|\\.)*+'?"
    rb"|#[^\n]*+"
    rb"|\\\r?\n"
    # (a block's `:` then a line at column 0: the block is missing, not a part's start)
    rb"|:[ \t]*(?:#[^\n]*)?(?:\r?\n[ \t\f]*(?:#[^\n]*)?)*\n(?=[^ \t\r\n\f#)\]}])"
    rb"|\n(?=[^ \t\r\n\f#)\]}])"  # (a line that starts with code at column 0)
    # (brackets closed on the line, with no string or comment inside: nothing to count)
    rb"|\([^()\[\]{}'\"#\n\\]*+\)|\[[^()\[\]{}'\"#\n\\]*+\]|\{[^()\[\]{}'\"#\n\\]*+\}"
    rb"|[()\[\]{}]",
    re.DOTALL,
)
_PY_WORD = re.compile(rb"([A-Za-z_]\w*)(?:[ \t]+(def)\b)?")
_PY_CONTINUED = frozenset({b"else", b"elif", b"except", b"finally"})
_AT = 0x40  # `@`


def python_cuts(source: bytes, start: int = 0) -> Iterator[int]:
    """The byte offsets after ``start`` (0 or an offset this returned) where ``source``
    starts a new part, in order. A part starts with the comment lines at column 0 right
    above its statement (they are its doc comment)."""
    depth = 0
    decorated = source[start : start + 1] == b"@"
    comments = comments_end = -1  # the comment lines at column 0 just read
    for match in _PY_LEXEMES.finditer(source, start):
        lexeme = match.group()
        if lexeme[:1] == b"#":
            at = match.start()
            if at == start or source[at - 1] == 0x0A:  # (at column 0)
                if comments < 0 or comments_end + 1 != at:
                    comments = at
                comments_end = match.end()
            else:
                comments = -1
            continue
        if len(lexeme) != 1 or lexeme in b"'\"":
            comments = -1
            continue  # a string, a line continued with `\`
        if lexeme in b"([{":
            depth += 1
            comments = -1
            continue
        if lexeme in b")]}":
            depth = max(0, depth - 1)
            comments = -1
            continue
        at = match.end()  # a line starts with code at column 0
        cut = comments if comments >= 0 and comments_end + 1 == at else at
        comments = -1
        word = _PY_WORD.match(source, at)
        first = word.group(1) if word else b""
        if depth:
            if first in (b"def", b"class") or (first == b"async" and word and word.group(2)):
                depth, decorated = 0, False
                if cut > start:
                    yield cut
            continue
        was_decorated, decorated = decorated, source[at] == _AT
        if was_decorated or first in _PY_CONTINUED:
            continue
        if cut > start:
            yield cut


def _head_end(source: bytes, at: int) -> int:
    """The end of the first line below ``at`` that is not a comment."""
    while source.startswith(b"#", at):
        at = source.find(b"\n", at) + 1
        if not at:
            return len(source)
    end = source.find(b"\n", at)
    return len(source) if end < 0 else end


def _cuts(language: str, source: bytes, start: int) -> Iterator[int]:
    return python_cuts(source, start) if language == "python" else iter(())


@dataclass(frozen=True, slots=True)
class ParsedText:
    """A part of a document (the whole of it in languages other than Python): its text and
    bytes, their tree and syntax errors (lines of the part), and the document line where
    it starts."""

    text: str
    source: bytes
    tree: Tree
    language: str
    problems: tuple[SyntaxProblem, ...]
    first_line: int = 0


@dataclass(slots=True)
class _Part:
    start: int  # byte offset in the document
    line: int  # the document's line where it starts
    source: bytes
    tree: Tree
    problems: tuple[SyntaxProblem, ...]  # lines of the part
    definitions: tuple[Definition, ...] | None = None  # lines of the part; None: not yet
    placed: tuple[Definition, ...] | None = None  # the same on the document's lines

    def moved(self, start: int, line: int) -> _Part:
        placed = self.placed if line == self.line else None
        return _Part(start, line, self.source, self.tree, self.problems, self.definitions, placed)

    def view(self, language: str) -> ParsedText:
        text = self.source.decode("utf-8", "surrogatepass")
        return ParsedText(text, self.source, self.tree, language, self.problems, self.line)


@dataclass(frozen=True, slots=True)
class ParsedDocument:
    """A document's text parsed in parts, and its syntax errors (lines of the document)."""

    text: str
    language: str
    problems: tuple[SyntaxProblem, ...]
    parts: tuple[_Part, ...]

    def part(self, line: int) -> ParsedText:
        """The part holding document line ``line``."""
        index = max(0, bisect.bisect_right([p.line for p in self.parts], line) - 1)
        return self.parts[index].view(self.language)

    def definitions(self, path: str) -> list[Definition]:
        """The document's definitions (``path`` is the document's), found part by part and
        kept with each part: after an edit only the part edited is read again. (A part
        starts with the comments above its statement, so each definition keeps its doc
        comment.)"""
        out: list[Definition] = []
        for part in self.parts:
            placed = part.placed
            if placed is None:
                found = part.definitions
                if found is None:
                    found = tuple(file_symbols(path, part.source, self.language).definitions)
                    part.definitions = found
                placed = part.placed = _shifted_definitions(found, part.line)
            out.extend(placed)
        return out


def _shifted_definitions(found: tuple[Definition, ...], lines: int) -> tuple[Definition, ...]:
    """``found`` moved down by ``lines`` (made field by field: ``dataclasses.replace``
    costs 3 ms for a 2,000-line file's; the definitions test compares every field)."""
    if not lines:
        return found
    return tuple(
        Definition(
            d.name,
            d.kind,
            d.path,
            d.start_line + lines,
            d.end_line + lines,
            d.signature_end_line + lines,
            d.doc,
            d.parent,
            d.bases,
            d.exported,
        )
        for d in found
    )


def syntax_problems(text: str, language: str) -> list[SyntaxProblem]:
    """The syntax errors of ``text`` (parsed from scratch)."""
    if not has_grammar(language):
        return []
    source = text.encode("utf-8", "surrogatepass")
    parts = _parse_parts(language, source, [*_cuts(language, source, 0), len(source)], 0, 0)
    return list(_problems_of_parts(parts))


def _parse_parts(
    language: str,
    source: bytes,
    bounds: Sequence[int],
    begin: int,
    line: int,
    old: Sequence[_Part] = (),
    edit: tuple[int, int] = (0, 0),
) -> list[_Part]:
    """The parts of ``source`` from byte ``begin`` (a part's start, on line ``line``) to
    each of ``bounds`` in turn. Parts of ``old`` (those of the text before an edit at
    byte ``edit[0]`` that moved what follows by ``edit[1]`` bytes) are kept where their
    bytes are the same, and re-parsed incrementally where they were edited."""
    at_old = {p.start: p for p in old}
    same = {p.source: p for p in old}  # (edits at two places move the parts between)
    edited, delta = edit
    parts: list[_Part] = []
    for end in bounds:
        if end <= begin:
            continue
        chunk = source[begin:end]
        previous = same.get(chunk)
        if previous is not None:
            part = previous.moved(begin, line)
        else:
            previous = at_old.get(begin if begin <= edited else begin - delta)
            tree = _reparse(previous, chunk, language)
            part = _Part(begin, line, chunk, tree, tuple(problems_of_tree(tree, chunk, language)))
        parts.append(part)
        line += chunk.count(b"\n")
        begin = end
    return parts


def _problems_of_parts(parts: Sequence[_Part]) -> tuple[SyntaxProblem, ...]:
    out: list[SyntaxProblem] = []
    for part in parts:
        for p in part.problems:
            if len(out) >= MAX_PROBLEMS:
                return tuple(out)
            out.append(_shifted(p, part.line) if part.line else p)
    return tuple(out)


def _shifted(p: SyntaxProblem, lines: int) -> SyntaxProblem:
    return SyntaxProblem(
        p.line + lines,
        p.column,
        p.end_line + lines,
        p.end_column,
        p.message,
        p.focus_start + lines,
        p.focus_end + lines,
    )


# ---- one parse per open document, re-parsed incrementally -------------------------------


@dataclass(slots=True)
class _Document:
    language: str
    source: bytes
    parts: list[_Part]
    problems: tuple[SyntaxProblem, ...]


class SyntaxTrees:
    """The latest parse of each open document, updated incrementally from its new text.

    Thread-safe: the server calls it from worker threads. A document's edit is found by
    comparing its previous text with the new one (common prefix and suffix), so the
    caller needs no change events, only texts. Only the parts the edit touched are parsed
    again (incrementally, from their old trees)."""

    def __init__(self) -> None:
        self._docs: dict[str, _Document] = {}
        self._lock = threading.Lock()

    def problems(self, key: str, text: str, language: str | None) -> list[SyntaxProblem]:
        """The syntax errors of ``text``, the document ``key``'s current text."""
        view = self.view(key, text, language)
        return list(view.problems) if view is not None else []

    def view(self, key: str, text: str, language: str | None) -> ParsedDocument | None:
        """``text`` (the document ``key``'s current text) parsed, with its syntax errors;
        None for a language without a grammar."""
        if language is None or not has_grammar(language):
            return None
        source = text.encode("utf-8", "surrogatepass")
        with self._lock:
            doc = self._docs.get(key)
            if doc is None or doc.language != language:
                bounds = [*_cuts(language, source, 0), len(source)]
                parts = _parse_parts(language, source, bounds, 0, 0)
            elif doc.source != source:
                parts = _edited_parts(doc, source)
            else:
                parts = doc.parts
            if doc is None or parts is not doc.parts:
                doc = self._docs[key] = _Document(
                    language, source, parts, _problems_of_parts(parts)
                )
            return ParsedDocument(text, language, doc.problems, tuple(doc.parts))

    def forget(self, key: str) -> None:
        with self._lock:
            self._docs.pop(key, None)


def _edited_parts(doc: _Document, source: bytes) -> list[_Part]:
    """The parts of ``source``, an edit of ``doc``'s text: the parts before the edit kept,
    the edited ones parsed again, and the ones after it kept and moved from where a part
    starts at the same place of the unchanged text after the edit (what follows a part's
    start does not depend on what precedes it)."""
    old, parts = doc.source, doc.parts
    start, old_end, new_end = changed_span(old, source)
    delta = len(source) - len(old)
    # From the part before the one edited when the edit is on a part's first line or the
    # comments above it (they decide whether and where a part starts there).
    index = max(0, bisect.bisect_right([p.start for p in parts], start) - 1)
    if index and start <= _head_end(old, parts[index].start):
        index -= 1
    begin, line = parts[index].start, parts[index].line
    after = {p.start + delta: i for i, p in enumerate(parts) if p.start > old_end}
    bounds: list[int] = []
    for cut in _cuts(doc.language, source, begin):
        bounds.append(cut)
        if cut >= new_end and cut in after:
            out = parts[:index]
            out += _parse_parts(doc.language, source, bounds, begin, line, parts, (start, delta))
            moved = source.count(b"\n", start, new_end) - old.count(b"\n", start, old_end)
            out += (p.moved(p.start + delta, p.line + moved) for p in parts[after[cut] :])
            return out
    bounds.append(len(source))
    return parts[:index] + _parse_parts(
        doc.language, source, bounds, begin, line, parts, (start, delta)
    )


def _reparse(previous: _Part | None, source: bytes, language: str) -> Tree:
    """A tree of ``source``: incrementally from ``previous`` (a part of an older text at
    the same place) when there is one."""
    p = parser(language)
    if previous is None:
        return p.parse(source)
    tree = previous.tree.copy()  # (the old one may be in use by another thread)
    tree.edit(**edit_between(previous.source, source))
    return p.parse(source, tree)


def _point(source: bytes, offset: int) -> Point:
    row = source.count(b"\n", 0, offset)
    line_start = source.rfind(b"\n", 0, offset) + 1
    return Point(row, offset - line_start)
