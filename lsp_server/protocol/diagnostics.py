"""Syntax errors of our own: pushed (`publishDiagnostics`) after a pause in typing, or
pulled (`textDocument/diagnostic`) by clients that ask for them. The errors are found by
`Runtime.syntax_problems` on a worker thread; here they are only scheduled and converted."""

from __future__ import annotations

import asyncio
import logging

from lsprotocol import types

from lsp_server.protocol.convert import syntax_diagnostics
from lsp_server.protocol.language_server import (
    QwenLanguageServer,
    open_document,
    open_text,
    path_of,
    server,
)
from lsp_server.protocol.mirror import LspTextDocument

log = logging.getLogger(__name__)

DIAGNOSTICS_DELAY_S = 0.2  # pushed syntax errors wait for a pause in typing this long


def pulls_diagnostics(ls: QwenLanguageServer) -> bool:
    """Whether the client asks for diagnostics (`textDocument/diagnostic`): then it gets
    them that way; other clients get them pushed (`publishDiagnostics`)."""
    caps = ls.client_capabilities.text_document
    return bool(caps and caps.diagnostic)


async def _syntax_diagnostics(ls: QwenLanguageServer, uri: str) -> list[types.Diagnostic] | None:
    """The syntax errors of an open document as LSP diagnostics (None: not open). A
    document too long to be checked (a 50 MB log) is answered at once: its text is not
    even joined on the event loop."""
    document = open_document(ls, uri)
    if document is None:
        return None
    length = document.length if isinstance(document, LspTextDocument) else len(document.source)
    if not ls.runtime.checks_syntax(length):
        return []
    text = open_text(ls, uri)
    if text is None:
        return None
    path, encoding = path_of(uri), ls.encoding()

    def find() -> list[types.Diagnostic]:
        problems = ls.runtime.syntax_problems(path, text)
        return syntax_diagnostics(problems, text.split("\n") if problems else [], encoding)

    return await asyncio.get_running_loop().run_in_executor(None, find)


def schedule_diagnostics(ls: QwenLanguageServer, uri: str) -> None:
    """Push the document's syntax errors after a pause in typing (debounced)."""
    if pulls_diagnostics(ls):
        return
    handle = ls._diagnostics_debounce.pop(uri, None)
    if handle is not None:
        handle.cancel()

    def run() -> None:
        ls._diagnostics_debounce.pop(uri, None)
        ls.keep(asyncio.ensure_future(_publish_diagnostics(ls, uri)))

    ls._diagnostics_debounce[uri] = asyncio.get_running_loop().call_later(DIAGNOSTICS_DELAY_S, run)


def clear_diagnostics(ls: QwenLanguageServer, uri: str) -> None:
    """The document was closed: no pending push, and no squiggles of ours left."""
    handle = ls._diagnostics_debounce.pop(uri, None)
    if handle is not None:
        handle.cancel()
    if not pulls_diagnostics(ls):
        ls.text_document_publish_diagnostics(
            types.PublishDiagnosticsParams(uri=uri, diagnostics=[])
        )


async def _publish_diagnostics(ls: QwenLanguageServer, uri: str) -> None:
    try:
        version = ls.workspace.get_text_document(uri).version
        diagnostics = await _syntax_diagnostics(ls, uri)
    except Exception:
        log.exception("finding the syntax errors of %s failed", uri)
        return
    if diagnostics is None or ls.runtime.closed:
        return
    if ls.workspace.get_text_document(uri).version != version:
        return  # typed since: the next pause publishes the newer ones
    ls.text_document_publish_diagnostics(
        types.PublishDiagnosticsParams(uri=uri, version=version, diagnostics=diagnostics)
    )


def refresh_diagnostics(ls: QwenLanguageServer) -> None:
    """``diagnostics.enabled`` changed: the open documents' diagnostics again."""
    if pulls_diagnostics(ls):
        workspace = ls.client_capabilities.workspace
        if workspace and workspace.diagnostics and workspace.diagnostics.refresh_support:
            ls.workspace_diagnostic_refresh(None)
        return
    for uri in list(ls.workspace.text_documents):
        schedule_diagnostics(ls, uri)


@server.feature(
    types.TEXT_DOCUMENT_DIAGNOSTIC,
    types.DiagnosticOptions(
        identifier="qwen-lsp", inter_file_dependencies=False, workspace_diagnostics=False
    ),
)
async def document_diagnostic(
    ls: QwenLanguageServer, params: types.DocumentDiagnosticParams
) -> types.RelatedFullDocumentDiagnosticReport:
    """The document's syntax errors, when the client pulls them."""
    diagnostics = await _syntax_diagnostics(ls, params.text_document.uri)
    return types.RelatedFullDocumentDiagnosticReport(items=diagnostics or [])
