"""What a completion and a code action do once the handler has the document: plain
async Python over the `Runtime`, so that the handlers in `protocol/` only convert
(LSP params in, one call here, LSP result out) and never touch the engine.

Both await a job of the engine thread without blocking the event loop; cancelling the
awaiting task (the client's `$/cancelRequest`) cancels the job.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
from collections.abc import Callable
from dataclasses import dataclass

from lsp_server.actions.plan import ActionPlan
from lsp_server.actions.rewrite import RewriteRequest, RewriteResult
from lsp_server.aio import await_future
from lsp_server.completion.service import CompletionRequest, CompletionResult
from lsp_server.engine.types import Cancelled, EngineError
from lsp_server.engine.worker import Job
from lsp_server.runtime import Runtime

log = logging.getLogger(__name__)

SECRET_FILE = (
    "this file's name marks it as secret: its text is not sent to the serving engine "
    "(model.backend openai)"
)


async def complete(
    runtime: Runtime, key: str, request: CompletionRequest, first_line: int = 0
) -> CompletionResult | None:
    """The completion of `request` (None: nothing to show), its suggestion moved up by
    `first_line` (a notebook cell completed as part of its notebook: back to the cell's
    own lines). Superseded, preempted or failed requests show nothing (a failure is
    logged and counted); a position outside the text raises `PositionError`."""
    if not runtime.completes(request.path):
        return None  # off for this language (completion.languages), or a secret file
    if not runtime.ready:
        await model_needed(runtime)  # the first request, or after a failure that may be over
        if not runtime.ready:
            return None
    job = runtime.submit_completion(key, request)
    try:
        result = await await_future(job.future, lambda: job.cancel("cancelled by the client"))
    except Cancelled:
        return None  # superseded by a newer request for this document, or preempted
    except EngineError as exc:
        runtime.completion_failed(request, exc)
        return None
    runtime.after_completion(key, request, result)
    if result.suggestion is not None and first_line:
        moved = dataclasses.replace(result.suggestion, line=result.suggestion.line - first_line)
        result = dataclasses.replace(result, suggestion=moved)
    return result


async def model_needed(runtime: Runtime) -> None:
    """A request needs the model now: start loading it unless it is loaded or loading,
    and wait for the load under way. Cancelling the request ends the wait, not the load
    (another request, or the next keystroke, is served by it)."""
    runtime.need_model()
    loading = runtime.host.loading
    if loading is None:
        return
    waited = asyncio.wrap_future(loading)
    try:
        await asyncio.shield(waited)
    except asyncio.CancelledError:
        if not waited.cancelled():
            raise  # the request was cancelled
    except Exception as exc:  # said by the runtime (showMessage)
        log.debug("model load ended: %s", exc)


@dataclass(frozen=True, slots=True)
class ActionOutcome:
    result: RewriteResult | None  # the checked rewrite (new_text set), or None
    message: str  # what to tell the user (why nothing changed, when `result` is None)


async def run_code_action(
    runtime: Runtime,
    key: str,
    plan: ActionPlan,
    path: str,
    display_path: str,
    text: str,
    on_job: Callable[[Job[RewriteResult]], None] = lambda job: None,
) -> ActionOutcome:
    """Run the planned action on `text` with the model: plan → engine → checked lines.
    `on_job` gets the engine job once it is queued (to link a progress's cancel button)."""
    if not runtime.may_send(path):
        return ActionOutcome(None, SECRET_FILE)
    if runtime.settings.code_actions.enabled and not runtime.code_actions_ready:
        await model_needed(runtime)  # picked before anything needed the model
    off = runtime.code_actions_off()  # (checked late: a reload may have ended them)
    if off:
        return ActionOutcome(None, off)
    request = RewriteRequest(plan, path, display_path, text, runtime.language_id(path))
    try:
        job = runtime.submit_code_action(key, request)
        on_job(job)
        result = await await_future(job.future, lambda: job.cancel("cancelled"))
    except Cancelled:
        return ActionOutcome(None, "cancelled: nothing was changed")
    except EngineError as exc:
        log.error("code action failed: %s", exc)
        return ActionOutcome(None, f"the code action failed: {exc}")
    if result.new_text is None:
        return ActionOutcome(None, result.message)
    return ActionOutcome(result, result.message)
