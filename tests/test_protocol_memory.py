"""pygls keeps a future for every notification it handles and never lets it go
(≈2 KB per `didChange`, docs/upstream.md): the server's protocol frees them."""

from __future__ import annotations

import asyncio
import json
from typing import Any

from lsprotocol import types
from pygls.lsp.server import LanguageServer
from pygls.protocol import LanguageServerProtocol

from lsp_server.protocol.lifecycle import QwenProtocol
from lsp_server.protocol.wire import handle_body


class Sink:
    def __init__(self) -> None:
        self.sent: list[bytes] = []

    def write(self, data: bytes) -> None:
        self.sent.append(data)

    def close(self) -> None:
        pass


def message(method: str, params: Any, ident: int | None = None) -> bytes:
    body: dict[str, Any] = {"jsonrpc": "2.0", "method": method, "params": params}
    if ident is not None:
        body["id"] = ident
    return json.dumps(body).encode()


def pending_after_edits(protocol_cls: type[LanguageServerProtocol], edits: int) -> int:
    """How many futures the protocol still holds after `edits` didChange notifications,
    with sync and async handlers for them as a server has."""
    server = LanguageServer(
        "t",
        "1",
        protocol_cls=protocol_cls,
        text_document_sync_kind=types.TextDocumentSyncKind.Incremental,
    )

    @server.feature(types.TEXT_DOCUMENT_DID_CHANGE)
    def did_change(ls: LanguageServer, params: types.DidChangeTextDocumentParams) -> None:
        pass

    @server.feature(types.TEXT_DOCUMENT_DID_SAVE)
    async def did_save(ls: LanguageServer, params: types.DidSaveTextDocumentParams) -> None:
        pass

    protocol = server.protocol
    protocol.set_writer(Sink())
    uri = "file:///tmp/a.py"

    async def main() -> None:
        handle_body(protocol, message("initialize", {"processId": None, "capabilities": {}}, 1))
        handle_body(protocol, message("initialized", {}))
        doc = {"uri": uri, "languageId": "python", "version": 1, "text": ""}
        handle_body(protocol, message("textDocument/didOpen", {"textDocument": doc}))
        for version in range(2, edits + 2):
            change = {
                "range": {"start": {"line": 0, "character": 0}, "end": {"line": 0, "character": 0}},
                "text": "x",
            }
            handle_body(
                protocol,
                message(
                    "textDocument/didChange",
                    {"textDocument": {"uri": uri, "version": version}, "contentChanges": [change]},
                ),
            )
            handle_body(protocol, message("textDocument/didSave", {"textDocument": {"uri": uri}}))
        for _ in range(5):
            await asyncio.sleep(0)
        assert protocol.workspace.get_text_document(uri).source == "x" * edits

    asyncio.run(main())
    return len(protocol._request_futures)


def test_bare_pygls_keeps_a_future_per_notification() -> None:
    # What the workaround is for: if pygls fixes it, this fails and the workaround can go.
    assert pending_after_edits(LanguageServerProtocol, 500) >= 1000


def test_the_servers_protocol_keeps_none() -> None:
    assert pending_after_edits(QwenProtocol, 500) == 0
