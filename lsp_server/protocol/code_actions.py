"""Code actions: `textDocument/codeAction` lists what `Runtime.plan_code_actions` plans
(no model); `codeAction/resolve`, or the `qwenLsp.applyCodeAction` command for clients
without lazy edits, runs the picked one (`lsp_server.requests.run_code_action`) with
work-done progress and converts its lines into a `WorkspaceEdit`."""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from lsprotocol import types
from pygls.exceptions import JsonRpcInvalidParams

from lsp_server import notebooks
from lsp_server.protocol.convert import (
    APPLY_ACTION_COMMAND,
    action_data,
    code_action_of,
    diagnostic_of,
    lines_edit,
    selected_lines,
)
from lsp_server.protocol.language_server import (
    QwenLanguageServer,
    begin_progress,
    end_progress,
    open_lines,
    open_text,
    path_of,
    server,
)
from lsp_server.protocol.notebooks import notebook_of
from lsp_server.requests import run_code_action

log = logging.getLogger(__name__)

APPLY_EDIT_TIMEOUT_S = 300.0  # the user may look at the edit before the editor answers


def _lazy_edits(ls: QwenLanguageServer) -> bool:
    """Whether the client fills an action's edit through `codeAction/resolve`."""
    caps = ls.client_capabilities.text_document
    support = caps.code_action.resolve_support if caps and caps.code_action else None
    return bool(support and "edit" in support.properties)


def _ai_tags(ls: QwenLanguageServer) -> bool:
    """Whether the client knows the tag that marks an action as written by a model."""
    caps = ls.client_capabilities.text_document
    support = caps.code_action.tag_support if caps and caps.code_action else None
    return bool(support and types.CodeActionTag.LlmGenerated in support.value_set)


def _versioned_edits(ls: QwenLanguageServer) -> bool:
    caps = ls.client_capabilities.workspace
    edit = caps.workspace_edit if caps else None
    return bool(edit and edit.document_changes)


def _display_path(ls: QwenLanguageServer, uri: str, path: str) -> str:
    """The path the model is shown: relative to the workspace, and for a notebook cell
    the notebook's (never the cell's URI)."""
    notebook = notebook_of(ls.workspace, uri)
    if notebook is None:
        return ls.runtime.display_path(path)
    return notebooks.display_path(ls.runtime, notebook)


@server.feature(
    types.TEXT_DOCUMENT_CODE_ACTION,
    types.CodeActionOptions(
        code_action_kinds=[types.CodeActionKind.QuickFix, types.CodeActionKind.RefactorRewrite],
        resolve_provider=True,
    ),
)
async def code_action(
    ls: QwenLanguageServer, params: types.CodeActionParams
) -> list[types.CodeAction] | None:
    """The actions at a range, at once (the model runs only for the one picked)."""
    if not ls.runtime.code_actions_offered:  # (planned without the model)
        return None
    uri = params.text_document.uri
    text = open_text(ls, uri)
    lines = open_lines(ls, uri)
    if text is None or lines is None:
        return None
    diagnostics = list(params.context.diagnostics)
    start_line, end_line = selected_lines(params.range)
    plans = await asyncio.get_running_loop().run_in_executor(
        None,
        ls.runtime.plan_code_actions,
        path_of(uri),
        text,
        start_line,
        end_line,
        [diagnostic_of(d, lines, ls.encoding()) for d in diagnostics],
        params.context.only or (),
        params.range.start != params.range.end,
    )
    lazy, tag = _lazy_edits(ls), _ai_tags(ls)
    return [code_action_of(plan, uri, diagnostics, lazy, tag) for plan in plans]


async def _run_action(ls: QwenLanguageServer, data: Any) -> tuple[types.WorkspaceEdit | None, str]:
    """Run the action `data` describes: its edit, or None and why there is none."""
    try:
        uri, plan = action_data(data)
    except ValueError as exc:
        raise JsonRpcInvalidParams(str(exc)) from exc
    text = open_text(ls, uri)
    if text is None:  # closed since, or never opened: nothing the user sees to change
        return None, "the document is not open: nothing was changed"
    version = ls.workspace.get_text_document(uri).version
    path = path_of(uri)
    token = await begin_progress(ls, f"qwen-lsp: {plan.title}", cancellable=True)

    def cancel_with_progress(job: Any) -> None:
        if token is not None and (pressed := ls.work_done_progress.tokens.get(token)) is not None:
            pressed.add_done_callback(lambda f: job.cancel("cancelled") if f.cancelled() else None)

    message = "cancelled"
    try:
        outcome = await run_code_action(
            ls.runtime, uri, plan, path, _display_path(ls, uri, path), text, cancel_with_progress
        )
        message = outcome.message
    finally:
        end_progress(ls, token, message)
    result = outcome.result
    if result is None or result.new_text is None:
        return None, outcome.message
    if ls.workspace.get_text_document(uri).version != version:
        return None, "the document changed while Qwen was writing: nothing was changed"
    edit = lines_edit(
        uri,
        version,
        open_lines(ls, uri) or text.split("\n"),
        result.start_line,
        result.end_line,
        result.new_text,
        result.count,
        ls.encoding(),
        versioned=_versioned_edits(ls),
    )
    return edit, outcome.message


@server.feature(types.CODE_ACTION_RESOLVE)
async def code_action_resolve(ls: QwenLanguageServer, action: types.CodeAction) -> types.CodeAction:
    """Fill in the picked action's edit (the model runs here, with progress)."""
    edit, message = await _run_action(ls, action.data)
    if edit is None:
        ls._notify_user(message, "info")
    action.edit = edit
    return action


@server.command(APPLY_ACTION_COMMAND)
def apply_code_action(ls: QwenLanguageServer, *arguments: Any) -> None:
    """The same for clients without lazy edits: answer at once, run the action in the
    background (its progress is what the user cancels) and send the edit with
    `workspace/applyEdit`. A command request that waited for the model could not be
    cancelled: pygls runs command handlers apart from the request."""
    if not arguments:
        raise JsonRpcInvalidParams("qwenLsp.applyCodeAction needs the action's data")
    try:
        action_data(arguments[0])  # a malformed action is refused now, not later
    except ValueError as exc:
        raise JsonRpcInvalidParams(str(exc)) from exc
    ls.keep(asyncio.ensure_future(_apply_in_background(ls, arguments[0])))


async def _apply_in_background(ls: QwenLanguageServer, data: Any) -> None:
    try:
        edit, message = await _run_action(ls, data)
        if edit is None:
            ls._notify_user(message, "info")
            return
        result = await asyncio.wait_for(
            ls.workspace_apply_edit_async(
                types.ApplyWorkspaceEditParams(edit=edit, label="qwen-lsp")
            ),
            APPLY_EDIT_TIMEOUT_S,
        )
        if not result.applied:
            reason = result.failure_reason or "refused"
            ls._notify_user(f"the edit was not applied: {reason}", "info")
    except Exception as exc:  # a background task: report, never lose it silently
        log.exception("code action failed")
        ls._notify_user(f"the code action failed: {exc}", "error")
