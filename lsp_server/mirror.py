"""The server's copy of the editor's documents, with LSP's idea of a line.

LSP positions count lines ended by ``\\n``, ``\\r\\n`` or ``\\r`` only. pygls splits
documents with ``str.splitlines``, which also breaks at form feeds (legal in Python
sources, PEP 8 uses them), vertical tabs, ``\\x1c``-``\\x1e``, NEL and U+2028/U+2029.
After such a character every incremental edit below it landed on the wrong line of the
server's copy: completions built from text the user never wrote, and a code action
could rewrite the wrong lines. ``LspTextDocument`` splits as the protocol does; every
pygls position conversion goes through its ``lines``.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any

import numpy as np
from lsprotocol import types
from pygls.workspace import TextDocument, Workspace

from lsp_server.convert import column_to_codepoints

# Characters `str.splitlines` breaks at and LSP does not.
_EXTRA_BREAKS = re.compile("[\x0b\x0c\x1c\x1d\x1e\x85\u2028\u2029]")
# One line with its end: \r\n before \r, a last line without an end.
_LSP_LINE = re.compile(r"[^\r\n]*(?:\r\n|\r|\n)|[^\r\n]+")
# A carriage return that does not start \r\n: a line break for LSP, not for tree-sitter.
_LONE_CR = re.compile(r"\r(?!\n)")


def lsp_lines(text: str) -> list[str]:
    """The lines of ``text`` as LSP counts them, each with its line end."""
    if _EXTRA_BREAKS.search(text) is None:
        return text.splitlines(True)  # the same lines, several times faster
    return _LSP_LINE.findall(text)


def with_lf_line_breaks(text: str) -> str:
    """``text`` with each lone ``\\r`` turned into ``\\n``: the same length and the same
    LSP line numbers, for code that splits at ``\\n`` (the completion, tree-sitter)."""
    return _LONE_CR.sub("\n", text) if "\r" in text else text


# An LSP line break; the offset just after one starts a line.
_BREAK = re.compile(r"\r\n|\r|\n")


def line_starts(text: str) -> np.ndarray:
    """The offsets at which the LSP lines of ``text`` start (0 first)."""
    ends = np.fromiter((m.end() for m in _BREAK.finditer(text)), dtype=np.int64)
    return np.concatenate((np.zeros(1, dtype=np.int64), ends))


class LspTextDocument(TextDocument):
    """A pygls document whose lines are LSP's.

    Edits are applied by offsets found from the start offset of every line, kept from one
    edit to the next (only the lines around an edit are scanned again): a keystroke in a
    20 MB file costs a few milliseconds of the event loop instead of a split of the whole
    text (150 ms; pygls's own line-by-line rebuild took longer still).
    """

    @property
    def lines(self) -> Sequence[str]:
        return tuple(lsp_lines(self.source))

    def _line_starts(self) -> np.ndarray:
        source = self.source
        if getattr(self, "_starts_of", None) is not source:  # (a whole-text change)
            self._starts = line_starts(source)
            self._starts_of = source
        return self._starts  # type: ignore[no-any-return]

    def _apply_incremental_change(self, change: Any) -> None:
        """Apply an edit by offsets, with LSP's clamping: a column past the end of its
        line is the line's end, a line past the end is the end of the text. (pygls's
        codec moved a column past the end of a last line without a line break one
        character back, and wrote the clamped value into the client's Position.)"""
        source = self.source
        starts = self._line_starts()
        kind = getattr(self._position_codec, "encoding", "utf-16")
        encoding = kind.value if isinstance(kind, types.PositionEncodingKind) else str(kind)
        start = _offset(source, starts, change.range.start, encoding)
        end = max(start, _offset(source, starts, change.range.end, encoding))
        text = change.text
        new = source[:start] + text + source[end:]
        # Line starts away from the edit are kept (shifted after it); those near it are
        # found again in the new text: a \r before the edit and a \n inserted after it
        # make one break, and so can the end of the inserted text with what follows.
        inserted_end = start + len(text)
        low, high = max(0, start - 1), min(len(new), inserted_end + 1)
        found = [m.end() for m in _BREAK.finditer(new, low, high)]
        around = np.array([e for e in found if start - 1 < e <= inserted_end], dtype=np.int64)
        before = starts[: max(1, int(np.searchsorted(starts, start - 1, side="right")))]
        after = starts[np.searchsorted(starts, end + 1, side="left") :] + (inserted_end - end)
        self._starts = np.concatenate((before, around, after))
        self._starts_of = new
        self._source = new


def _offset(source: str, starts: np.ndarray, position: Any, encoding: str) -> int:
    """The code-point offset of an LSP position in ``source`` whose lines start at
    ``starts``: a column past the end of its line is the line's end (before its line
    break), a line past the end is the end of the text."""
    line = position.line
    if line >= len(starts):
        return len(source)
    first = int(starts[line])
    last = int(starts[line + 1]) if line + 1 < len(starts) else len(source)
    text = source[first:last]
    column = column_to_codepoints(text[: _content_length(text)], position.character, encoding)
    return first + column


def _content_length(line: str) -> int:
    """The length of a line without its line break."""
    if line.endswith("\r\n"):
        return len(line) - 2
    return len(line) - 1 if line.endswith(("\n", "\r")) else len(line)


class LspWorkspace(Workspace):
    """A pygls workspace that holds ``LspTextDocument``s."""

    def _create_text_document(self, *args: Any, **kwargs: Any) -> TextDocument:
        document = super()._create_text_document(*args, **kwargs)
        document.__class__ = LspTextDocument
        return document


def use_lsp_lines(workspace: Workspace) -> None:
    """Make pygls's workspace (made before the server's `initialize` handler runs) create
    ``LspTextDocument``s. Call before any document is opened."""
    if not isinstance(workspace, LspWorkspace):
        workspace.__class__ = LspWorkspace
