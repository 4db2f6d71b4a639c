"""The editor's documents: text documents and notebooks opened, edited and closed, and
files changed on disk. pygls keeps the text (`mirror.py`); the runtime hears of each
event and re-indexes the unsaved text after a pause in typing, on its documents thread."""

from __future__ import annotations

import asyncio

from lsprotocol import types
from pygls.exceptions import JsonRpcInvalidParams

from lsp_server.protocol.completions import request_at
from lsp_server.protocol.convert import codepoints_to_column, edited_lines
from lsp_server.protocol.diagnostics import clear_diagnostics, schedule_diagnostics
from lsp_server.protocol.language_server import QwenLanguageServer, open_text, path_of, server
from lsp_server.protocol.mirror import with_lf_line_breaks

DOCUMENT_DELAY_S = 0.15  # an edit reaches the index after a pause in typing this long


@server.feature(types.TEXT_DOCUMENT_DID_OPEN)
def did_open(ls: QwenLanguageServer, params: types.DidOpenTextDocumentParams) -> None:
    doc = params.text_document
    ls.runtime.document_opened(path_of(doc.uri), doc.text, doc.language_id)
    _schedule_document_work(ls, doc.uri, warm=True)
    schedule_diagnostics(ls, doc.uri)


@server.feature(types.TEXT_DOCUMENT_DID_CHANGE)
def did_change(ls: QwenLanguageServer, params: types.DidChangeTextDocumentParams) -> None:
    path = path_of(params.text_document.uri)
    for change in params.content_changes:
        if (lines := edited_lines(change)) is not None:
            ls.runtime.recent_edit(path, *lines)
    _schedule_document_work(ls, params.text_document.uri, warm=False)
    schedule_diagnostics(ls, params.text_document.uri)


@server.feature(types.TEXT_DOCUMENT_DID_CLOSE)
def did_close(ls: QwenLanguageServer, params: types.DidCloseTextDocumentParams) -> None:
    uri = params.text_document.uri
    ls.runtime.document_closed(path_of(uri))
    clear_diagnostics(ls, uri)


def _schedule_document_work(ls: QwenLanguageServer, uri: str, *, warm: bool) -> None:
    """Re-index the unsaved text after a pause in typing (debounced per document)."""
    handle = ls._debounce.pop(uri, None)
    if handle is not None:
        handle.cancel()
    loop = asyncio.get_running_loop()

    def run() -> None:
        ls._debounce.pop(uri, None)
        try:
            doc = ls.workspace.get_text_document(uri)
            text = with_lf_line_breaks(doc.source)
        except Exception:
            return
        loop.run_in_executor(
            ls.runtime.documents, ls.runtime.document_changed, path_of(uri), text, warm
        )

    ls._debounce[uri] = loop.call_later(DOCUMENT_DELAY_S, run)


@server.feature(types.NOTEBOOK_DOCUMENT_DID_OPEN)
def notebook_did_open(ls: QwenLanguageServer, params: types.DidOpenNotebookDocumentParams) -> None:
    for cell in params.cell_text_documents:  # (pygls keeps the notebook and its cells)
        ls.runtime.document_opened(path_of(cell.uri), cell.text, cell.language_id)
    # As for a file opened, warm the engine where typing will most likely start: the end
    # of the last code cell (most notebooks grow at the bottom).
    code = [
        cell.document
        for cell in params.notebook_document.cells
        if cell.kind == types.NotebookCellKind.Code
    ]
    if code:
        _schedule_notebook_warm(ls, code[-1])


def _schedule_notebook_warm(ls: QwenLanguageServer, cell_uri: str) -> None:
    """Warm the engine with the prompt a completion at the end of the cell ``cell_uri``
    would build (the notebook's cells joined), once the editor has settled."""
    loop = asyncio.get_running_loop()

    def run() -> None:
        text = open_text(ls, cell_uri)
        if text is None or not ls.runtime.warmable:  # (warmed once loaded, if loading)
            return
        lines = text.split("\n")
        last = lines[-1]
        end = types.Position(len(lines) - 1, codepoints_to_column(last, len(last), ls.encoding()))
        try:
            request, _, _ = request_at(ls, cell_uri, end)
        except JsonRpcInvalidParams:
            return
        if ls.runtime.completes(request.path):
            loop.run_in_executor(ls.runtime.documents, ls.runtime.warm, cell_uri, request)

    loop.call_later(DOCUMENT_DELAY_S, run)


@server.feature(types.NOTEBOOK_DOCUMENT_DID_CHANGE)
def notebook_did_change(
    ls: QwenLanguageServer, params: types.DidChangeNotebookDocumentParams
) -> None:
    structure = params.change.cells.structure if params.change.cells else None
    if structure is None:
        return
    for cell in structure.did_open or ():
        ls.runtime.document_opened(path_of(cell.uri), cell.text, cell.language_id)
    for closed in structure.did_close or ():
        ls.runtime.document_closed(path_of(closed.uri))


@server.feature(types.NOTEBOOK_DOCUMENT_DID_CLOSE)
def notebook_did_close(
    ls: QwenLanguageServer, params: types.DidCloseNotebookDocumentParams
) -> None:
    for cell in params.cell_text_documents:
        ls.runtime.document_closed(path_of(cell.uri))
    ls.runtime.document_closed(path_of(params.notebook_document.uri))  # its joined cells


@server.feature(types.WORKSPACE_DID_CHANGE_WATCHED_FILES)
def did_change_watched_files(
    ls: QwenLanguageServer, params: types.DidChangeWatchedFilesParams
) -> None:
    changes = [(path_of(c.uri), c.type == types.FileChangeType.Deleted) for c in params.changes]
    asyncio.get_running_loop().run_in_executor(
        ls.runtime.documents, ls.runtime.files_changed, changes
    )
