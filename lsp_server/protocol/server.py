"""The language server: thin handlers over the plain modules.

Each handler gets the document, calls one plain function (the completer on the engine
thread, the index on a worker thread) and converts the result in `convert.py`.
Inference and indexing never run on the event loop.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import os
import threading
import uuid
from collections.abc import Callable
from concurrent.futures import Future
from typing import Any, TypeVar
from urllib.parse import unquote

from lsprotocol import types
from pygls.exceptions import FeatureRequestError, JsonRpcInvalidParams
from pygls.lsp.server import LanguageServer
from pygls.uris import to_fs_path

from context.pack import document_name
from lsp_server import __version__
from lsp_server.actions.rewrite import RewriteRequest, RewriteResult
from lsp_server.completion.document import PositionError
from lsp_server.completion.service import CompletionRequest, CompletionResult
from lsp_server.completion.stats import Stats
from lsp_server.engine.client import ClientInfo
from lsp_server.engine.types import Cancelled, EngineError
from lsp_server.parent import watch_parent
from lsp_server.protocol import wire
from lsp_server.protocol.convert import (
    APPLY_ACTION_COMMAND,
    action_data,
    code_action_of,
    codepoints_to_column,
    column_to_codepoints,
    completion_items,
    diagnostic_of,
    edited_lines,
    inline_items,
    lines_edit,
    selected_lines,
    syntax_diagnostics,
)
from lsp_server.protocol.lifecycle import QwenProtocol
from lsp_server.protocol.mirror import use_lsp_lines, with_lf_line_breaks
from lsp_server.protocol.notebooks import notebook_view
from lsp_server.runtime import Runtime
from lsp_server.settings import SECTION, Settings, load_settings

log = logging.getLogger(__name__)

STATS_METHOD = "qwenLsp/stats"
DIAGNOSTICS_DELAY_S = 0.2  # pushed syntax errors wait for a pause in typing this long
APPLY_EDIT_TIMEOUT_S = 300.0  # the user may look at the edit before the editor answers
T = TypeVar("T")
R = TypeVar("R")


class QwenLanguageServer(LanguageServer):
    """Holds the runtime (settings, engine, index) and the client-facing state."""

    def __init__(self) -> None:
        super().__init__(
            "qwen-lsp",
            __version__,
            text_document_sync_kind=types.TextDocumentSyncKind.Incremental,
            # Notebooks (Jupyter in VS Code): their cells, to complete a cell with the
            # code of the others (lsp_server.protocol.notebooks).
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

    # ---- messages to the user --------------------------------------------------------

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


def _on_loop(loop: asyncio.AbstractEventLoop) -> bool:
    try:
        return asyncio.get_running_loop() is loop
    except RuntimeError:
        return False


server = QwenLanguageServer()


async def _await(future: Future[T], on_cancel: Callable[[], None]) -> T:
    """Await a worker future. A job the worker cancelled (superseded, preempted, a model
    reload) raises `Cancelled`; cancelling the awaiting task (the client's
    `$/cancelRequest`) cancels the job and raises `CancelledError` as usual."""
    loop = asyncio.get_running_loop()
    waiter: asyncio.Future[T] = loop.create_future()

    def transfer(done: Future[T]) -> None:
        if waiter.done():
            return
        if done.cancelled():
            waiter.set_exception(Cancelled("cancelled"))
        elif (exc := done.exception()) is not None:
            waiter.set_exception(exc)
        else:
            waiter.set_result(done.result())

    future.add_done_callback(lambda done: loop.call_soon_threadsafe(transfer, done))
    try:
        return await waiter
    except asyncio.CancelledError:
        on_cancel()
        raise


async def _progress(ls: QwenLanguageServer, title: str, cancellable: bool) -> str | None:
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


# ---- lifecycle ---------------------------------------------------------------------


@server.feature(types.INITIALIZE)
def initialize(ls: QwenLanguageServer, params: types.InitializeParams) -> None:
    ls.loop = asyncio.get_running_loop()
    ls.overlays_ranges = bool(params.client_info and params.client_info.name == "Neovim")
    use_lsp_lines(ls.workspace)  # lines end at \n, \r\n, \r only (lsp_server/protocol/mirror.py)
    result = load_settings(params.initialization_options)
    ls.runtime.settings = ls.runtime.init_settings = result.settings
    ls.runtime.pending_errors.extend(result.errors)
    roots = [to_fs_path(f.uri) for f in params.workspace_folders or []]
    if not roots and params.root_uri:
        roots = [to_fs_path(params.root_uri)]
    elif not roots and params.root_path:
        roots = [params.root_path]
    ls.runtime.roots = [os.path.realpath(r) for r in roots if r]
    info = params.client_info  # named in the shared engine's list of editors
    ls.runtime.host.client = ClientInfo(
        f"{info.name} {info.version or ''}".strip() if info else "qwen-lsp",
        os.path.basename(ls.runtime.roots[0]) if ls.runtime.roots else "",
        os.getpid(),
    )
    if params.process_id:
        watch_parent(params.process_id, lambda: _parent_gone(ls, params.process_id or 0))


def _parent_gone(ls: QwenLanguageServer, pid: int) -> None:
    """The editor that started us died without `shutdown` (LSP: the server must then
    exit): free the model and the index, then leave at once; nobody is left to talk to."""
    log.warning("the client process %d is gone: exiting", pid)
    try:
        ls.runtime.close()
    finally:
        os._exit(0)


@server.feature(types.INITIALIZED)
async def initialized(ls: QwenLanguageServer, params: types.InitializedParams) -> None:
    await _pull_configuration(ls)
    for message in ls.runtime.pending_errors:
        ls._notify_user(f"invalid setting, using the default: {message}")
    ls.runtime.pending_errors.clear()
    ls.runtime.attach_workspace()
    asyncio.ensure_future(_load_model(ls))
    asyncio.ensure_future(_build_index(ls))
    asyncio.ensure_future(_watch_files(ls))


async def _watch_files(ls: QwenLanguageServer) -> None:
    """Ask the client to report files changed on disk (the index follows them)."""
    if ls.runtime.context is None:
        return
    workspace = ls.client_capabilities.workspace
    watched = workspace.did_change_watched_files if workspace else None
    if not (watched and watched.dynamic_registration):
        return
    options = types.DidChangeWatchedFilesRegistrationOptions(
        watchers=[types.FileSystemWatcher(glob_pattern="**/*")]
    )
    registration = types.Registration(
        id="qwen-lsp-watch",
        method=types.WORKSPACE_DID_CHANGE_WATCHED_FILES,
        register_options=options,
    )
    try:
        await asyncio.wait_for(
            ls.client_register_capability_async(
                types.RegistrationParams(registrations=[registration])
            ),
            10,
        )
    except Exception as exc:
        log.warning(
            "could not register file watchers (%s): files changed outside the editor "
            "are picked up at the next start",
            exc,
        )


async def _pull_configuration(ls: QwenLanguageServer) -> None:
    workspace = ls.client_capabilities.workspace
    if not (workspace and workspace.configuration):
        return
    try:
        values = await asyncio.wait_for(
            ls.workspace_configuration_async(
                types.ConfigurationParams(items=[types.ConfigurationItem(section=SECTION)])
            ),
            5,
        )
    except Exception as exc:
        log.warning("workspace/configuration failed: %s", exc)
        return
    if values and isinstance(values[0], dict) and values[0]:
        # On top of initializationOptions, not of the last pull: a key the user
        # removed goes back to its default.
        result = load_settings(values[0], base=ls.runtime.init_settings)
        ls.runtime.pending_errors.extend(result.errors)
        ls.runtime.settings = result.settings


@server.feature(types.WORKSPACE_DID_CHANGE_CONFIGURATION)
async def did_change_configuration(
    ls: QwenLanguageServer, params: types.DidChangeConfigurationParams
) -> None:
    before = ls.runtime.settings
    settings = params.settings
    if isinstance(settings, dict) and settings.get(SECTION):
        result = load_settings(settings, base=ls.runtime.init_settings)
        ls.runtime.settings = result.settings
        ls.runtime.pending_errors.extend(result.errors)
    else:
        await _pull_configuration(ls)
    for message in ls.runtime.pending_errors:
        ls._notify_user(f"invalid setting, using the default: {message}")
    ls.runtime.pending_errors.clear()
    if ls.runtime.apply_settings(before):
        asyncio.ensure_future(_load_model(ls))
    if before.diagnostics != ls.runtime.settings.diagnostics:
        _refresh_diagnostics(ls)


async def _load_model(ls: QwenLanguageServer) -> None:
    token = await _progress(ls, "qwen-lsp: loading the model", cancellable=False)
    try:
        future = ls.runtime.load_model()
        await asyncio.wrap_future(future)
    except Exception as exc:  # reported by the runtime through showMessage
        log.debug("model load ended: %s", exc)
    finally:
        if token:
            ls.work_done_progress.end(
                token, types.WorkDoneProgressEnd(message=ls.runtime.host.message)
            )


async def _build_index(ls: QwenLanguageServer) -> None:
    if ls.runtime.context is None:
        return
    token = await _progress(ls, "qwen-lsp: indexing the workspace", cancellable=True)
    cancel = threading.Event()
    loop = asyncio.get_running_loop()

    if token is not None and (future := ls.work_done_progress.tokens.get(token)) is not None:
        # The user pressed cancel on the progress: the index stops between files.
        future.add_done_callback(lambda f: cancel.set() if f.cancelled() else None)

    def report(done: int, total: int, path: str) -> None:
        if token is None or cancel.is_set() or done % 50 and done != total:
            return  # (after shutdown the client no longer listens)
        pct = int(100 * done / max(1, total))
        try:
            loop.call_soon_threadsafe(
                ls.work_done_progress.report,
                token,
                types.WorkDoneProgressReport(message=f"{done}/{total} files", percentage=pct),
            )
        except RuntimeError:  # the loop is closed: the server is going away
            cancel.set()

    try:
        stats = await _in_thread(lambda: ls.runtime.build_index(report, cancel), "qwen-lsp-index")
        message = stats if isinstance(stats, str) else "done"
    except Exception as exc:
        log.exception("indexing failed")
        message = f"indexing failed: {exc}"
    if token and not ls.runtime.closed:  # (after shutdown the client no longer listens)
        ls.work_done_progress.end(token, types.WorkDoneProgressEnd(message=message))


def _in_thread(call: Callable[[], R], name: str) -> asyncio.Future[R]:
    """Run a long blocking `call` in a daemon thread of its own. Not the loop's default
    executor: leaving the event loop waits for every job in that one, so a big index build
    would keep a server whose client has gone (EOF, `exit`) alive until it ended."""
    loop = asyncio.get_running_loop()
    future: asyncio.Future[R] = loop.create_future()

    def settle(value: Any, error: BaseException | None) -> None:
        if not future.done():
            if error is not None:
                future.set_exception(error)
            else:
                future.set_result(value)

    def work() -> None:
        try:
            value, error = call(), None
        except BaseException as exc:  # handed to the awaiting coroutine
            value, error = None, exc
        try:
            loop.call_soon_threadsafe(settle, value, error)
        except RuntimeError:  # the loop is closed: nobody awaits it any more
            pass

    threading.Thread(target=work, name=name, daemon=True).start()
    return future


@server.feature(types.SHUTDOWN)
def shutdown(ls: QwenLanguageServer, params: Any) -> None:
    for handle in [*ls._debounce.values(), *ls._diagnostics_debounce.values()]:
        handle.cancel()  # re-indexing after the engine is gone: no
    ls._debounce.clear()
    ls._diagnostics_debounce.clear()
    ls.runtime.close()


# ---- documents ---------------------------------------------------------------------


def _path_of(uri: str) -> str:
    """The real path of a file URI (the URI itself for other schemes). A URI no file can
    have (a lone UTF-16 surrogate, a NUL) gives a path that matches no file either,
    instead of an error in every handler."""
    try:
        path = to_fs_path(uri)
        return os.path.realpath(path) if path else uri
    except (UnicodeError, ValueError):
        safe = uri.encode("utf-8", "replace").decode("utf-8").replace("\0", "?")
        return safe if safe != uri else "?"


@server.feature(types.TEXT_DOCUMENT_DID_OPEN)
def did_open(ls: QwenLanguageServer, params: types.DidOpenTextDocumentParams) -> None:
    doc = params.text_document
    ls.runtime.document_opened(_path_of(doc.uri), doc.text, doc.language_id)
    _schedule_document_work(ls, doc.uri, warm=True)
    _schedule_diagnostics(ls, doc.uri)


@server.feature(types.TEXT_DOCUMENT_DID_CHANGE)
def did_change(ls: QwenLanguageServer, params: types.DidChangeTextDocumentParams) -> None:
    path = _path_of(params.text_document.uri)
    for change in params.content_changes:
        if (lines := edited_lines(change)) is not None:
            ls.runtime.recent_edit(path, *lines)
    _schedule_document_work(ls, params.text_document.uri, warm=False)
    _schedule_diagnostics(ls, params.text_document.uri)


@server.feature(types.TEXT_DOCUMENT_DID_CLOSE)
def did_close(ls: QwenLanguageServer, params: types.DidCloseTextDocumentParams) -> None:
    uri = params.text_document.uri
    ls.runtime.document_closed(_path_of(uri))
    handle = ls._diagnostics_debounce.pop(uri, None)
    if handle is not None:
        handle.cancel()
    if not _pulls_diagnostics(ls):  # a closed file keeps no squiggles of ours
        ls.text_document_publish_diagnostics(
            types.PublishDiagnosticsParams(uri=uri, diagnostics=[])
        )


# ---- syntax errors of our own ---------------------------------------------------------


def _pulls_diagnostics(ls: QwenLanguageServer) -> bool:
    """Whether the client asks for diagnostics (`textDocument/diagnostic`): then it gets
    them that way; other clients get them pushed (`publishDiagnostics`)."""
    caps = ls.client_capabilities.text_document
    return bool(caps and caps.diagnostic)


async def _syntax_diagnostics(ls: QwenLanguageServer, uri: str) -> list[types.Diagnostic] | None:
    """The syntax errors of an open document as LSP diagnostics (None: not open)."""
    text = _open_text(ls, uri)
    if text is None:
        return None
    problems = await asyncio.get_running_loop().run_in_executor(
        None, ls.runtime.syntax_problems, _path_of(uri), text
    )
    return syntax_diagnostics(problems, text.split("\n"), ls.encoding())


def _schedule_diagnostics(ls: QwenLanguageServer, uri: str) -> None:
    """Push the document's syntax errors after a pause in typing (debounced)."""
    if _pulls_diagnostics(ls):
        return
    handle = ls._diagnostics_debounce.pop(uri, None)
    if handle is not None:
        handle.cancel()

    def run() -> None:
        ls._diagnostics_debounce.pop(uri, None)
        task = asyncio.ensure_future(_publish_diagnostics(ls, uri))
        ls._background.add(task)
        task.add_done_callback(ls._background.discard)

    ls._diagnostics_debounce[uri] = asyncio.get_running_loop().call_later(DIAGNOSTICS_DELAY_S, run)


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


def _refresh_diagnostics(ls: QwenLanguageServer) -> None:
    """``diagnostics.enabled`` changed: the open documents' diagnostics again."""
    if _pulls_diagnostics(ls):
        workspace = ls.client_capabilities.workspace
        if workspace and workspace.diagnostics and workspace.diagnostics.refresh_support:
            ls.workspace_diagnostic_refresh(None)
        return
    for uri in list(ls.workspace.text_documents):
        _schedule_diagnostics(ls, uri)


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
            ls.runtime.documents, ls.runtime.document_changed, _path_of(uri), text, warm
        )

    ls._debounce[uri] = loop.call_later(0.15, run)


@server.feature(types.NOTEBOOK_DOCUMENT_DID_OPEN)
def notebook_did_open(ls: QwenLanguageServer, params: types.DidOpenNotebookDocumentParams) -> None:
    for cell in params.cell_text_documents:  # (pygls keeps the notebook and its cells)
        ls.runtime.document_opened(_path_of(cell.uri), cell.text, cell.language_id)
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
        text = _open_text(ls, cell_uri)
        if text is None or not ls.runtime.ready:
            return
        lines = text.split("\n")
        last = lines[-1]
        end = types.Position(len(lines) - 1, codepoints_to_column(last, len(last), ls.encoding()))
        try:
            request, _, _ = _request(ls, cell_uri, end)
        except JsonRpcInvalidParams:
            return
        if ls.runtime.completes(request.path):
            loop.run_in_executor(ls.runtime.documents, ls.runtime.warm, cell_uri, request)

    loop.call_later(0.15, run)


@server.feature(types.NOTEBOOK_DOCUMENT_DID_CHANGE)
def notebook_did_change(
    ls: QwenLanguageServer, params: types.DidChangeNotebookDocumentParams
) -> None:
    structure = params.change.cells.structure if params.change.cells else None
    if structure is None:
        return
    for cell in structure.did_open or ():
        ls.runtime.document_opened(_path_of(cell.uri), cell.text, cell.language_id)
    for closed in structure.did_close or ():
        ls.runtime.document_closed(_path_of(closed.uri))


@server.feature(types.NOTEBOOK_DOCUMENT_DID_CLOSE)
def notebook_did_close(
    ls: QwenLanguageServer, params: types.DidCloseNotebookDocumentParams
) -> None:
    for cell in params.cell_text_documents:
        ls.runtime.document_closed(_path_of(cell.uri))
    ls.runtime.document_closed(_path_of(params.notebook_document.uri))  # its joined cells


@server.feature(types.WORKSPACE_DID_CHANGE_WATCHED_FILES)
def did_change_watched_files(
    ls: QwenLanguageServer, params: types.DidChangeWatchedFilesParams
) -> None:
    changes = [(_path_of(c.uri), c.type == types.FileChangeType.Deleted) for c in params.changes]
    asyncio.get_running_loop().run_in_executor(
        ls.runtime.documents, ls.runtime.files_changed, changes
    )


# ---- completions -------------------------------------------------------------------


def _open_text(ls: QwenLanguageServer, uri: str) -> str | None:
    """The editor's text of an open document (lone \r as \n), None when it is not open:
    pygls would read any path from disk instead, and fail on one that does not exist."""
    if unquote(uri) not in ls.workspace.text_documents:  # (pygls keys them unquoted)
        return None
    return with_lf_line_breaks(ls.workspace.get_text_document(uri).source)


def _request(
    ls: QwenLanguageServer, uri: str, position: types.Position
) -> tuple[CompletionRequest, str, int]:
    """The request at ``position``, the text of its line, and how many lines of the text
    completed come before the document's first (a notebook cell: the cells above)."""
    text = _open_text(ls, uri)
    if text is None:
        raise JsonRpcInvalidParams(f"the document is not open: {uri}")
    lines = text.split("\n")
    if position.line < 0 or position.line >= len(lines):
        raise JsonRpcInvalidParams(
            f"position {position.line}:{position.character} is past the end of the document ({len(lines)} lines)"
        )
    line_text = lines[position.line].removesuffix("\r")
    character = column_to_codepoints(line_text, position.character, ls.encoding())
    path = _path_of(uri)
    view = notebook_view(ls.workspace, uri)  # (None for a cell it leaves out: completed alone)
    first_line = view.first_line if view is not None else 0
    request = ls.runtime.completion_request(
        path, view.text if view is not None else text, first_line + position.line, character
    )
    notebook = ls.workspace.get_notebook_document(cell_uri=uri)
    if notebook is not None:  # the model is shown the notebook, never a cell's URI
        notebook_path = _path_of(notebook.uri)
        root = ls.runtime.root_of(notebook_path) if os.path.isabs(notebook_path) else None
        request = dataclasses.replace(
            request,
            display_path=_notebook_display_path(ls, notebook),
            repo_name=os.path.basename(root) if root else "",
            # Retrieval reads the joined cells as the notebook file's text: its imports
            # resolve from the notebook's folder.
            context_path=notebook_path if os.path.isabs(notebook_path) else "",
        )
    return request, line_text, first_line


def _display_path(ls: QwenLanguageServer, uri: str, path: str) -> str:
    """The path the model is shown: relative to the workspace, and for a notebook cell
    the notebook's (never the cell's URI)."""
    notebook = ls.workspace.get_notebook_document(cell_uri=uri)
    if notebook is None:
        return ls.runtime.display_path(path)
    return _notebook_display_path(ls, notebook)


def _notebook_display_path(ls: QwenLanguageServer, notebook: types.NotebookDocument) -> str:
    notebook_path = _path_of(notebook.uri)
    if os.path.isabs(notebook_path):
        return ls.runtime.display_path(notebook_path)
    return document_name(unquote(notebook.uri.rstrip("/")))


async def _complete(
    ls: QwenLanguageServer, uri: str, position: types.Position
) -> tuple[CompletionResult | None, str]:
    request, line_text, first_line = _request(ls, uri, position)
    result, line_text = await _run_completion(ls, uri, request, line_text)
    if result is not None and result.suggestion is not None and first_line:
        # Back to the cell's own lines.
        moved = dataclasses.replace(result.suggestion, line=result.suggestion.line - first_line)
        result = dataclasses.replace(result, suggestion=moved)
    return result, line_text


async def _run_completion(
    ls: QwenLanguageServer, uri: str, request: CompletionRequest, line_text: str
) -> tuple[CompletionResult | None, str]:
    if not ls.runtime.completes(request.path):
        return None, line_text  # off for this language (completion.languages)
    if not ls.runtime.ready:
        ls.runtime.host.retry()  # after a failure, when it may work now
        return None, line_text
    job = ls.runtime.submit_completion(uri, request)
    try:
        result = await _await(job.future, lambda: job.cancel("cancelled by the client"))
    except Cancelled:
        # Superseded by a newer request for this document, or preempted: nothing to show.
        return None, line_text
    except PositionError as exc:
        raise JsonRpcInvalidParams(str(exc)) from exc
    except EngineError as exc:
        ls.runtime.completion_failed(request, exc)
        return None, line_text
    ls.runtime.after_completion(uri, request, result)
    return result, line_text


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


# ---- code actions -------------------------------------------------------------------


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
    if not ls.runtime.code_actions_ready:
        return None
    uri = params.text_document.uri
    text = _open_text(ls, uri)
    if text is None:
        return None
    diagnostics = list(params.context.diagnostics)
    start_line, end_line = selected_lines(params.range)
    lines = text.split("\n")
    plans = await asyncio.get_running_loop().run_in_executor(
        None,
        ls.runtime.plan_code_actions,
        _path_of(uri),
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
    text = _open_text(ls, uri)
    if text is None:  # closed since, or never opened: nothing the user sees to change
        return None, "the document is not open: nothing was changed"
    version = ls.workspace.get_text_document(uri).version
    path = _path_of(uri)
    request = RewriteRequest(
        plan, path, _display_path(ls, uri, path), text, ls.runtime.language_id(path)
    )
    token = await _progress(ls, f"qwen-lsp: {plan.title}", cancellable=True)
    message = "cancelled"
    try:
        off = (
            ls.runtime.code_actions_off()
        )  # checked after the progress round trip: a reload may end it
        if off:
            message = off
            return None, off
        job = ls.runtime.submit_code_action(uri, request)
        if token is not None and (pressed := ls.work_done_progress.tokens.get(token)) is not None:
            pressed.add_done_callback(lambda f: job.cancel("cancelled") if f.cancelled() else None)
        result: RewriteResult = await _await(job.future, lambda: job.cancel("cancelled"))
        message = result.message
    except Cancelled:
        message = "cancelled: nothing was changed"
        return None, message
    except EngineError as exc:
        log.error("code action failed: %s", exc)
        message = f"the code action failed: {exc}"
        return None, message
    finally:
        if token:
            ls.work_done_progress.end(token, types.WorkDoneProgressEnd(message=message))
    if result.new_text is None:
        return None, result.message
    if ls.workspace.get_text_document(uri).version != version:
        return None, "the document changed while Qwen was writing: nothing was changed"
    edit = lines_edit(
        uri,
        version,
        text.split("\n"),
        result.start_line,
        result.end_line,
        result.new_text,
        result.count,
        ls.encoding(),
        versioned=_versioned_edits(ls),
    )
    return edit, result.message


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
    task = asyncio.ensure_future(_apply_in_background(ls, arguments[0]))
    ls._background.add(task)  # the loop keeps only weak references to tasks
    task.add_done_callback(ls._background.discard)


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


@server.feature(STATS_METHOD)
def stats(ls: QwenLanguageServer, params: Any = None) -> dict[str, Any]:
    return ls.runtime.stats_snapshot()


def serve(tcp: tuple[str, int] | None = None) -> int:
    """Run the server until the client disconnects; the process's exit code."""
    log.info("qwen-lsp %s starting (%s)", __version__, f"tcp {tcp[0]}:{tcp[1]}" if tcp else "stdio")

    def max_bytes() -> int:
        return server.runtime.settings.protocol.max_message_mb << 20

    def listening(address: str) -> None:
        log.warning(
            "serving on TCP %s for debugging: any program of any user of this machine "
            "can connect and read your code through it; editors use stdio",
            address,
        )

    try:
        if tcp:
            return wire.serve_tcp(server, *tcp, max_bytes, listening)
        return wire.serve_stdio(server, max_bytes)
    finally:
        server.runtime.close()


__all__ = ["server", "serve", "QwenLanguageServer"]
