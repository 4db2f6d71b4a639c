"""`textDocument/inlineCompletion` and `textDocument/completion`: the document's text
and the cursor in code points in, `lsp_server.requests.complete`, the suggestion back in
the client's encoding."""

from __future__ import annotations

from urllib.parse import unquote

from lsprotocol import types
from pygls.exceptions import JsonRpcInvalidParams

from lsp_server.completion.document import PositionError
from lsp_server.completion.service import CompletionRequest, CompletionResult
from lsp_server.notebooks import cell_request
from lsp_server.protocol.convert import column_to_codepoints, completion_items, inline_items
from lsp_server.protocol.language_server import (
    QwenLanguageServer,
    open_lines,
    open_text,
    path_of,
    server,
)
from lsp_server.protocol.notebooks import notebook_of
from lsp_server.requests import complete


def request_at(
    ls: QwenLanguageServer, uri: str, position: types.Position
) -> tuple[CompletionRequest, str, int]:
    """The request at ``position``, the text of its line, and how many lines of the text
    completed come before the document's first (a notebook cell: the cells above)."""
    text = open_text(ls, uri)
    lines = open_lines(ls, uri)
    if text is None or lines is None:
        raise JsonRpcInvalidParams(f"the document is not open: {uri}")
    if position.line < 0 or position.line >= len(lines):
        raise JsonRpcInvalidParams(
            f"position {position.line}:{position.character} is past the end of the document ({len(lines)} lines)"
        )
    line_text = lines[position.line].removesuffix("\r")
    character = column_to_codepoints(line_text, position.character, ls.encoding())
    path = path_of(uri)
    notebook = notebook_of(ls.workspace, uri)
    if notebook is None:
        return ls.runtime.completion_request(path, text, position.line, character), line_text, 0
    request, first_line = cell_request(
        ls.runtime, notebook, path, unquote(uri), text, position.line, character
    )
    return request, line_text, first_line


async def _complete(
    ls: QwenLanguageServer, uri: str, position: types.Position
) -> tuple[CompletionResult | None, str]:
    request, line_text, first_line = request_at(ls, uri, position)
    try:
        return await complete(ls.runtime, uri, request, first_line), line_text
    except PositionError as exc:
        raise JsonRpcInvalidParams(str(exc)) from exc


@server.feature(
    types.TEXT_DOCUMENT_INLINE_COMPLETION,
    types.InlineCompletionOptions(),
)
async def inline_completion(
    ls: QwenLanguageServer, params: types.InlineCompletionParams
) -> types.InlineCompletionList:
    result, line_text = await _complete(ls, params.text_document.uri, params.position)
    suggestion = result.suggestion if result else None
    return inline_items(suggestion, line_text, ls.encoding(), ranges=not ls.overlays_ranges)


@server.feature(
    types.TEXT_DOCUMENT_COMPLETION,
    types.CompletionOptions(trigger_characters=[".", "(", " ", "\n"], resolve_provider=False),
)
async def completion(
    ls: QwenLanguageServer, params: types.CompletionParams
) -> types.CompletionList:
    result, line_text = await _complete(ls, params.text_document.uri, params.position)
    return completion_items(result.suggestion if result else None, line_text, ls.encoding())
