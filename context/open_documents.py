"""Open documents: what the index keeps of a file open in the editor, re-parsed
incrementally from its unsaved text at each change.

``parse_document`` turns the new text of a document into its ``OpenDocument``: the
previous tree is edited (the one edit between the common prefix and suffix of the old
and new bytes, ``edit_between``) and re-parsed, so a keystroke costs a fraction of a
full parse. The index (``WorkspaceIndex.update_document``) keeps the result, which
shadows the disk version of the file until the document is closed.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

from tree_sitter import Point, Tree

from context import symbols as sym
from context.languages import has_grammar, refine_language
from context.types import FileSymbols

log = logging.getLogger(__name__)


@dataclass(slots=True)
class OpenDocument:
    """An open document as the index keeps it."""

    source: bytes
    tree: Tree | None  # None for a language read as text
    language: str
    symbols: FileSymbols
    names: tuple[str, ...]  # its distinct definition names
    indexed: bool  # inside a root and not ignored: its names are in the name map


def parse_document(
    path: str,
    source: bytes,
    language: str,
    previous: OpenDocument | None,
    indexed: bool,
) -> OpenDocument:
    """The document ``path`` with the text ``source``, parsed incrementally from
    ``previous`` (its last version, whose tree this edits) when the language is the same.
    A rule that fails on the text costs its symbols, never the editor's request."""
    language = refine_language(language, source)
    tree: Tree | None = None
    raw = sym.EMPTY
    if not has_grammar(language):
        # Read as text: nothing to parse; the text serves the similar windows.
        language, raw = sym.extract_source(source, language)
    elif previous is not None and previous.language == language and previous.tree is not None:
        previous.tree.edit(**edit_between(previous.source, source))
        tree = sym.parse(source, language, previous.tree)
    else:
        tree = sym.parse(source, language)
    if tree is not None:
        try:
            raw = sym.extract(tree, source, language)
        except Exception:  # a rule bug must not break the editor's request
            log.exception("cannot extract symbols from %s", path)
            raw = sym.EMPTY
    symbols = sym.to_file_symbols(path, language, raw)
    return OpenDocument(source, tree, language, symbols, sym.definition_names(raw), indexed)


def _point_at(data: bytes, offset: int) -> Point:
    row = data.count(b"\n", 0, offset)
    line_start = data.rfind(b"\n", 0, offset) + 1
    return Point(row, offset - line_start)


def _common_prefix(a: bytes, b: bytes) -> int:
    """Length of the common prefix, compared block-wise in C then narrowed down."""
    limit = min(len(a), len(b))
    lo = 0
    step = 4096
    while lo + step <= limit and a[lo : lo + step] == b[lo : lo + step]:
        lo += step
    hi = min(lo + step, limit)
    while lo < hi:  # binary search inside the first differing block
        mid = (lo + hi + 1) // 2
        if a[lo:mid] == b[lo:mid]:
            lo = mid
        else:
            hi = mid - 1
    return lo


def _common_suffix(a: bytes, b: bytes, limit: int) -> int:
    """Length of the common suffix, at most ``limit``."""
    n = 0
    step = 4096
    la, lb = len(a), len(b)
    while n + step <= limit and a[la - n - step : la - n] == b[lb - n - step : lb - n]:
        n += step
    hi = min(n + step, limit)
    while n < hi:
        mid = (n + hi + 1) // 2
        if a[la - mid : la - n] == b[lb - mid : lb - n]:
            n = mid
        else:
            hi = mid - 1
    return n


def changed_span(old: bytes, new: bytes) -> tuple[int, int, int]:
    """The one span that differs: ``old[start:old_end]`` became ``new[start:new_end]``."""
    start = _common_prefix(old, new)
    suffix = _common_suffix(old, new, min(len(old), len(new)) - start)
    return start, len(old) - suffix, len(new) - suffix


def edit_between(old: bytes, new: bytes) -> dict[str, Any]:
    """The single edit turning ``old`` into ``new``, as ``Tree.edit`` wants it."""
    start, old_end, new_end = changed_span(old, new)
    start_point = _point_at(old, start)
    return {
        "start_byte": start,
        "old_end_byte": old_end,
        "new_end_byte": new_end,
        "start_point": start_point,
        "old_end_point": _point_at(old, old_end),
        "new_end_point": _point_at(new, new_end),
    }
