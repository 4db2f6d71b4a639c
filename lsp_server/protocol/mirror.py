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
from typing import Any, overload

from lsprotocol import types
from pygls.workspace import TextDocument, Workspace

from lsp_server.protocol.convert import column_to_codepoints

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


class SplitLines(Sequence[str]):
    """The lines of a document as ``with_lf_line_breaks(text).split("\\n")`` gives them (a
    CRLF line keeps its ``\\r``; the text after a final line break is one more, empty, line),
    read from the document's LSP lines: a request needs one line and the count, and splitting
    a 50 MB text on the event loop took 0.3–0.8 s at each completion and code action."""

    def __init__(self, lsp_lines: Sequence[str]) -> None:
        self._lines = lsp_lines
        ended = not lsp_lines or lsp_lines[-1].endswith(("\n", "\r"))
        self._count = len(lsp_lines) + (1 if ended else 0)

    def __len__(self) -> int:
        return self._count

    @overload
    def __getitem__(self, index: int) -> str: ...

    @overload
    def __getitem__(self, index: slice) -> list[str]: ...

    def __getitem__(self, index: int | slice) -> str | list[str]:
        if isinstance(index, slice):
            return [self[i] for i in range(*index.indices(self._count))]
        if index < 0:
            index += self._count
        if not 0 <= index < self._count:
            raise IndexError(index)
        if index == len(self._lines):
            return ""
        line = self._lines[index]
        return line[:-1] if line.endswith(("\n", "\r")) else line


class LspTextDocument(TextDocument):
    """A pygls document whose lines are LSP's, kept as a list of lines so that an edit
    costs in proportion to the lines it touches, not to the document.

    pygls rebuilt the document line by line in Python at each edit, and the first version
    of this class split the whole text into lines and copied it: both cost time in
    proportion to the document's size on the event loop (≈9 ms per MB, 158–188 ms per
    keystroke in a 20 MB file). Now an edit replaces the few lines it touches in the list;
    the text as one string is joined again only when it is read (a completion, the
    debounced re-index), not at each keystroke.
    """

    _line_list: list[str] | None = None  # LSP lines with their ends; None: not split yet
    _length: int | None = None  # of the text in code points; None: not counted yet

    @property
    def length(self) -> int:
        """The text's length in code points, kept up to date by the edits: what a size
        limit needs, without joining the lines of a 50 MB document on the event loop."""
        if self._length is None:
            if self._source is None and self._line_list is not None:
                self._length = sum(map(len, self._line_list))
            else:
                self._length = len(self.source)
        return self._length

    @property
    def source(self) -> str:
        if self._source is None and self._line_list is not None:
            self._source = "".join(self._line_list)
        return super().source

    @property
    def lines(self) -> Sequence[str]:
        return self._lines()

    def _lines(self) -> list[str]:
        if self._line_list is None:
            self._line_list = lsp_lines(self.source)
        return self._line_list

    def _apply_full_change(self, change: Any) -> None:
        super()._apply_full_change(change)
        self._line_list = None
        self._length = None

    def _apply_incremental_change(self, change: Any) -> None:
        """Apply an edit to the lines it spans, with LSP's clamping: a column past the end
        of its line is the line's end, a line past the end is the end of the text. (pygls's
        codec also moved a column past the end of a last line without a line break one
        character back, and wrote the clamped value into the client's Position.)"""
        lines = self._lines()
        kind = getattr(self._position_codec, "encoding", "utf-16")
        encoding = kind.value if isinstance(kind, types.PositionEncodingKind) else str(kind)
        start = _point(lines, change.range.start, encoding)
        end = max(start, _point(lines, change.range.end, encoding))
        lo, hi = start[0], min(end[0] + 1, len(lines))
        prefix = lines[lo][: start[1]] if lo < len(lines) else ""
        suffix = lines[end[0]][end[1] :] if end[0] < len(lines) else ""
        text = prefix + change.text + suffix
        # A lone CR at one end of the edit and an LF at the other make one line break.
        if text.startswith("\n") and lo > 0 and lines[lo - 1].endswith("\r"):
            lo -= 1
            text = lines[lo] + text
        if text.endswith("\r") and hi < len(lines) and lines[hi].startswith("\n"):
            text += lines[hi]
            hi += 1
        replaced = lsp_lines(text)
        if self._length is not None:
            self._length += sum(map(len, replaced)) - sum(map(len, lines[lo:hi]))
        lines[lo:hi] = replaced
        self._source = None


def _point(lines: Sequence[str], position: Any, encoding: str) -> tuple[int, int]:
    """(line index, code-point column) of an LSP position, clamped as LSP says; the end
    of the text is (len(lines), 0), or the end of a last line without a line break."""
    if position.line >= len(lines):
        if lines and _content_length(lines[-1]) == len(lines[-1]):
            return len(lines) - 1, len(lines[-1])
        return len(lines), 0
    line = lines[position.line]
    return position.line, column_to_codepoints(
        line[: _content_length(line)], position.character, encoding
    )


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
