"""Definitions as candidate snippets: whole, with a skeleton as the cheaper form, or a
skeleton alone (docs/context.md, "Sources and scores"); and the lines of the files they
come from, kept while a file's text is unchanged.

Plain functions over lines of text: ``context.retrieve`` decides what to offer and with
which score, this module what each offer looks like.
"""

from __future__ import annotations

import re
import threading
from collections.abc import Callable

from context.types import Definition, Snippet

SMALL_DEFINITION_LINES = 12  # at most this long: always whole, no skeleton
MAX_FUNCTION_LINES = 150  # longer functions are only ever shown as skeletons
MAX_CLASS_LINES = 60  # longer classes become an outline: skeleton + member signatures
MAX_DOC_LINES = 12  # a longer docstring or leading comment stays out of the skeleton
MAX_MEMBER_DOC_LINES = 4  # the same in class outlines, which list many members
CLASS_KINDS = frozenset({"class", "interface", "struct", "enum", "trait", "impl", "type"})
# A definition's own closing line (brace languages, Lua's `end`); Python's closing
# parentheses belong to statements, not to the definition.
_CLOSER = re.compile(r"^\s*(?:[)\]]*\}[)\]]*[;,]?|end\)?)\s*$")
_DOC_START = re.compile(r'^\s*[rRbBuUfF]{0,2}("""|\'\'\')')
_COMMENT = ("//", "/*", "*", "#", "--", "///", "*/", "<!--")

_LOCK = threading.Lock()


def definition_snippets(
    definition: Definition,
    lines: list[str],
    score: float,
    reason: str,
    source: str = "definition",
    *,
    member: bool = False,
) -> list[Snippet]:
    """The candidate snippets for one definition.

    Small definitions come whole. Larger functions come whole with a skeleton
    (decorators/leading comment, signature, docstring, closing line) as the cheaper
    form, or as the skeleton alone past `MAX_FUNCTION_LINES`. Larger classes come as
    their skeleton (the caller adds member signatures for an outline). A `member` of
    such an outline always has its signature as the cheaper form, with a short doc.

    The forms of another file's definition are kept while its lines are (the same few
    definitions come back at every keystroke); only score and reason are per request.
    """
    if source == "current":
        return _definition_forms(definition, lines, score, reason, source, member)
    key = (definition, member, source)
    with _LOCK:
        hit = _FORMS_CACHE.get(key)
    if hit is None or hit[0] is not lines:
        forms = _definition_forms(definition, lines, 0.0, "", source, member)
        with _LOCK:
            _FORMS_CACHE[key] = (lines, forms)  # `lines` keeps the identity check valid
            while len(_FORMS_CACHE) > _FORMS_CACHE_SIZE:
                del _FORMS_CACHE[next(iter(_FORMS_CACHE))]
    else:
        forms = hit[1]
    # (Snippet's own constructor: `dataclasses.replace` cost 3 us a form, ~300 a request.)
    return [
        Snippet(
            f.path, f.start_line, f.end_line, f.text, reason, score, f.tokens, f.source, f.skeleton
        )
        for f in forms
    ]


_FORMS_CACHE: dict[tuple[Definition, bool, str], tuple[list[str], list[Snippet]]] = {}
_FORMS_CACHE_SIZE = 4096


def _definition_forms(
    definition: Definition,
    lines: list[str],
    score: float,
    reason: str,
    source: str,
    member: bool,
) -> list[Snippet]:
    n = len(lines)
    if n == 0 or definition.start_line >= n:
        return []
    head = _head_line(lines, definition)
    end = min(definition.end_line, n - 1)
    sig_end = max(head, min(definition.signature_end_line, end))
    doc_end = _doc_end(lines, sig_end, end)
    max_doc = MAX_MEMBER_DOC_LINES if member else MAX_DOC_LINES
    skeleton_end = doc_end if doc_end is not None and doc_end - sig_end <= max_doc else sig_end
    size = end - head + 1
    is_class = definition.kind in CLASS_KINDS
    # A leading comment as long as a docstring too long for the skeleton stays out of it
    # too (Go's and Java's doc comments of 20-40 lines): only the whole form shows it.
    top = _after_long_comment(lines, head, definition.start_line)
    if member and skeleton_end < end and size <= MAX_FUNCTION_LINES:
        whole = make_snippet(definition.path, lines, head, end, score, reason, source)
        return [_with_skeleton(whole, lines, top, skeleton_end, end)] if whole else []
    if size <= SMALL_DEFINITION_LINES or (is_class and size <= MAX_CLASS_LINES):
        whole = make_snippet(definition.path, lines, head, end, score, reason, source)
        if whole is None:
            return []
        if size <= SMALL_DEFINITION_LINES:
            return [whole]
        return [_with_skeleton(whole, lines, top, skeleton_end, end)]
    if is_class or size > MAX_FUNCTION_LINES:
        # Only the skeleton; an outline's members are separate candidates. With a long
        # leading comment, the skeleton with it is the whole form, without it the cheap.
        only = make_snippet(definition.path, lines, head, skeleton_end, score, reason, source)
        if only is not None and top > head:
            return [_with_skeleton(only, lines, top, skeleton_end, skeleton_end)]
        return [only] if only is not None else []
    whole = make_snippet(definition.path, lines, head, end, score, reason, source)
    if whole is None:
        return []
    return [_with_skeleton(whole, lines, top, skeleton_end, end)]


def _after_long_comment(lines: list[str], head: int, start: int) -> int:
    """Where a skeleton starts: `head`, or past the leading comment lines when more than
    `MAX_DOC_LINES` of them stand between `head` and the definition's `start`."""
    if start - head <= MAX_DOC_LINES:
        return head
    top = head
    while top < start and lines[top].strip().startswith(_COMMENT):
        top += 1
    return top


def _with_skeleton(
    whole: Snippet, lines: list[str], head: int, skeleton_end: int, end: int
) -> Snippet:
    pieces = [make_snippet(whole.path, lines, head, skeleton_end, 0.0, "", whole.source)]
    if end > skeleton_end + 1 and _CLOSER.match(lines[end]):
        pieces.append(make_snippet(whole.path, lines, end, end, 0.0, "", whole.source))
    skeleton = tuple(p for p in pieces if p is not None)
    return Snippet(
        whole.path,
        whole.start_line,
        whole.end_line,
        whole.text,
        whole.reason,
        whole.score,
        source=whole.source,
        skeleton=skeleton,
    )


def _head_line(lines: list[str], definition: Definition) -> int:
    """First line to show: decorators and the leading comment belong to a definition."""
    head = min(definition.start_line, len(lines) - 1)
    i = head - 1
    while i >= 0 and head - i <= 30:
        stripped = lines[i].strip()
        if stripped.startswith("@") or (stripped.startswith(_COMMENT) and stripped):
            head = i
            i -= 1
            continue
        break
    return head


def _doc_end(lines: list[str], sig_end: int, end: int) -> int | None:
    """Last line of a Python docstring right after the signature, if there is one."""
    i = sig_end + 1
    while i <= end and not lines[i].strip():
        i += 1
    if i > end:
        return None
    match = _DOC_START.match(lines[i])
    if match is None:
        return None
    quote = match.group(1)
    rest = lines[i][match.end() :]
    if quote in rest:
        return i
    for j in range(i + 1, min(end, i + 200) + 1):
        if quote in lines[j]:
            return j
    return None


def make_snippet(
    path: str,
    lines: list[str],
    start: int,
    end: int,
    score: float,
    reason: str,
    source: str,
) -> Snippet | None:
    start = max(0, start)
    end = min(end, len(lines) - 1)
    if end < start:
        return None
    body = "\n".join(lines[start : end + 1])
    if "\r" in body:  # (CRLF files only: a generator per line cost more than the join)
        body = "\n".join(line.rstrip("\r") for line in lines[start : end + 1])
    if not body.strip():
        return None
    return Snippet(path, start, end, body, reason, score, source=source)


def with_source(snippet: Snippet, source: str) -> Snippet:
    return Snippet(
        snippet.path,
        snippet.start_line,
        snippet.end_line,
        snippet.text,
        snippet.reason,
        snippet.score,
        snippet.tokens,
        source,
        tuple(with_source(p, source) for p in snippet.skeleton),
    )


# File texts split into lines, reused while the text is unchanged: the same few
# definition files are read on every keystroke.
_LINES_CACHE: dict[str, tuple[str, list[str]]] = {}
_LINES_CACHE_SIZE = 256


def file_lines(text_of: Callable[[str], str | None], path: str) -> list[str] | None:
    """The lines of a file's current text (None: it has none)."""
    try:
        text = text_of(path)
    except OSError:
        return None
    if text is None:
        return None
    with _LOCK:
        hit = _LINES_CACHE.get(path)
        if hit is not None and hit[0] == text:
            _LINES_CACHE[path] = _LINES_CACHE.pop(path)  # most recently used last
            return hit[1]
    lines = text.split("\n")
    with _LOCK:
        _LINES_CACHE.pop(path, None)
        _LINES_CACHE[path] = (text, lines)
        while len(_LINES_CACHE) > _LINES_CACHE_SIZE:
            del _LINES_CACHE[next(iter(_LINES_CACHE))]
    return lines
