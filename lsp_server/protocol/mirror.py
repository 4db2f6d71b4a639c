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


class LspTextDocument(TextDocument):
    """A pygls document whose lines are LSP's."""

    @property
    def lines(self) -> Sequence[str]:
        return tuple(lsp_lines(self.source))

    def _apply_incremental_change(self, change: Any) -> None:
        """Apply an edit by offsets, with LSP's clamping. pygls rebuilt the document line
        by line in Python (70 ms per keystroke on the event loop for a 20 MB file), and
        its codec moved a column past the end of a last line without a line break one
        character back (and wrote the clamped value into the client's Position)."""
        source = self.source
        lines = self.lines
        kind = getattr(self._position_codec, "encoding", "utf-16")
        encoding = kind.value if isinstance(kind, types.PositionEncodingKind) else str(kind)
        start = _offset(lines, change.range.start, encoding, len(source))
        end = max(start, _offset(lines, change.range.end, encoding, len(source)))
        self._source = source[:start] + change.text + source[end:]


def _offset(lines: Sequence[str], position: Any, encoding: str, total: int) -> int:
    """The code-point offset of an LSP position: a column past the end of its line is the
    line's end (before its line break), a line past the end is the end of the text."""
    if position.line >= len(lines):
        return total
    line = lines[position.line]
    column = column_to_codepoints(line[: _content_length(line)], position.character, encoding)
    return sum(map(len, lines[: position.line])) + column


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
