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

from pygls.workspace import TextDocument, Workspace

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
