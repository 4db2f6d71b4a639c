"""The one server object every handler module registers on, and what the handlers
share: the negotiated encoding, messages to the user, the file path of a URI, the
editor's text of an open document and work-done progress."""

from __future__ import annotations

import asyncio
import logging
import os
import uuid
from collections.abc import Sequence
from typing import Any
from urllib.parse import unquote

from lsprotocol import types
from pygls.exceptions import FeatureRequestError
from pygls.lsp.server import LanguageServer
from pygls.uris import to_fs_path
from pygls.workspace import TextDocument

from lsp_server import __version__
from lsp_server.completion.stats import Stats
from lsp_server.protocol.lifecycle import QwenProtocol
from lsp_server.protocol.mirror import LspTextDocument, SplitLines, with_lf_line_breaks
from lsp_server.runtime import Runtime
from lsp_server.settings import Settings

log = logging.getLogger(__name__)


class QwenLanguageServer(LanguageServer):
    """Holds the runtime (settings, engine, index) and the client-facing state."""

    def __init__(self) -> None:
        super().__init__(
            "qwen-lsp",
            __version__,
            text_document_sync_kind=types.TextDocumentSyncKind.Incremental,
            # Notebooks (Jupyter in VS Code): their cells, to complete a cell with the
            # code of the others (lsp_server/notebooks.py).
            notebook_document_sync=types.NotebookDocumentSyncOptions(
                notebook_selector=[
                    types.NotebookDocumentFilterWithCells(
                        notebook="*", cells=[types.NotebookCellLanguage(language="*")]
                    )
                ]
            ),
            protocol_cls=QwenProtocol,
        )
        self.runtime = Runtime(Settings(), Stats(), notify=self._notify_user)
        self._debounce: dict[str, asyncio.TimerHandle] = {}
        self._diagnostics_debounce: dict[str, asyncio.TimerHandle] = {}
        self._background: set[asyncio.Future[None]] = set()
        self.loop: asyncio.AbstractEventLoop | None = None  # set on `initialize`
        # Neovim 0.12 draws an inline item that has a range as an overlay from the range's
        # start, over the code after the cursor: it gets plain insertions (set on
        # `initialize` from clientInfo).
        self.overlays_ranges = False

    def report_server_error(self, error: Exception, source: Any) -> None:
        """pygls shows an "Error in server" popup for a notification it could not handle
        (a didChange for a closed document, an unreadable message): a client's mistake is
        not the user's business. The log keeps it (requests carry their errors in the
        answer)."""
        if source is FeatureRequestError:
            return  # answered with the error (and logged by pygls)
        log.error(
            "error handling a client message (%s): %s", getattr(source, "__name__", source), error
        )

    def _notify_user(self, message: str, level: str = "warning") -> None:
        """Show `message` once (from any thread)."""
        kind = {"error": types.MessageType.Error, "info": types.MessageType.Info}.get(
            level, types.MessageType.Warning
        )
        params = types.ShowMessageParams(type=kind, message=f"qwen-lsp: {message}")
        loop = self.loop
        if loop is None:
            return
        if _on_loop(loop):
            self.window_show_message(params)
        else:
            loop.call_soon_threadsafe(self.window_show_message, params)

    def encoding(self) -> str:
        """The negotiated position encoding, as its wire value ("utf-16", ...)."""
        try:
            encoding = self.workspace.position_encoding or types.PositionEncodingKind.Utf16
        except RuntimeError:  # before initialize
            encoding = types.PositionEncodingKind.Utf16
        return encoding.value if isinstance(encoding, types.PositionEncodingKind) else str(encoding)

    def keep(self, task: asyncio.Future[None]) -> None:
        """Hold a background task until it ends (the loop keeps only weak references)."""
        self._background.add(task)
        task.add_done_callback(self._background.discard)


def _on_loop(loop: asyncio.AbstractEventLoop) -> bool:
    try:
        return asyncio.get_running_loop() is loop
    except RuntimeError:
        return False


server = QwenLanguageServer()


def path_of(uri: str) -> str:
    """The real path of a file URI (the URI itself for other schemes). A URI no file can
    have (a lone UTF-16 surrogate, a NUL) gives a path that matches no file either,
    instead of an error in every handler."""
    try:
        path = to_fs_path(uri)
        return os.path.realpath(path) if path else uri
    except (UnicodeError, ValueError):
        safe = uri.encode("utf-8", "replace").decode("utf-8").replace("\0", "?")
        return safe if safe != uri else "?"


def open_document(ls: QwenLanguageServer, uri: str) -> TextDocument | None:
    """An open document (None when it is not open), its text not read."""
    if unquote(uri) not in ls.workspace.text_documents:  # (pygls keys them unquoted)
        return None
    return ls.workspace.get_text_document(uri)


def open_text(ls: QwenLanguageServer, uri: str) -> str | None:
    """The editor's text of an open document (lone \r as \n), None when it is not open:
    pygls would read any path from disk instead, and fail on one that does not exist."""
    if unquote(uri) not in ls.workspace.text_documents:  # (pygls keys them unquoted)
        return None
    return with_lf_line_breaks(ls.workspace.get_text_document(uri).source)


def open_lines(ls: QwenLanguageServer, uri: str) -> Sequence[str] | None:
    """The lines of `open_text(ls, uri)` as `.split("\\n")` gives them, without splitting
    the whole text (None when the document is not open)."""
    if unquote(uri) not in ls.workspace.text_documents:
        return None
    document = ls.workspace.get_text_document(uri)
    if isinstance(document, LspTextDocument):
        return SplitLines(document.lines)
    return with_lf_line_breaks(document.source).split("\n")


async def begin_progress(ls: QwenLanguageServer, title: str, cancellable: bool) -> str | None:
    """Show a work-done progress (its token; None when the client shows none)."""
    caps = ls.client_capabilities.window
    if not (caps and caps.work_done_progress):
        return None
    token = f"qwen-lsp-{uuid.uuid4().hex[:8]}"
    try:
        await asyncio.wait_for(ls.work_done_progress.create_async(token), 5)
    except Exception:
        return None
    ls.work_done_progress.begin(
        token, types.WorkDoneProgressBegin(title=title, cancellable=cancellable)
    )
    return token


def end_progress(ls: QwenLanguageServer, token: str | None, message: str) -> None:
    if token:
        ls.work_done_progress.end(token, types.WorkDoneProgressEnd(message=message))
