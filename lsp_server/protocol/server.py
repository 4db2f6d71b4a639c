"""The language server: the lifecycle (initialize, configuration, the model's load and
the index's build with their progress, shutdown), `qwenLsp/stats` and `serve`.

Each feature is a module of its own that registers its handlers on the one server
object (`language_server.py`): documents and notebooks (`sync.py`), completions
(`completions.py`), code actions (`code_actions.py`), syntax errors (`diagnostics.py`).
Each handler gets the document, calls one plain function and converts the result in
`convert.py`. Inference and indexing never run on the event loop.
"""

from __future__ import annotations

import asyncio
import logging
import os
import threading
from concurrent.futures import Future
from typing import Any

from lsprotocol import types
from pygls.uris import to_fs_path

from lsp_server import __version__
from lsp_server.aio import in_thread
from lsp_server.parent import watch_parent
from lsp_server.protocol import code_actions, completions, diagnostics, sync, wire
from lsp_server.protocol.language_server import (
    QwenLanguageServer,
    begin_progress,
    end_progress,
    server,
)
from lsp_server.protocol.mirror import use_lsp_lines
from lsp_server.settings import SECTION, load_settings

log = logging.getLogger(__name__)

STATS_METHOD = "qwenLsp/stats"
FEATURES = (sync, completions, code_actions, diagnostics)  # imported: their handlers registered


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
    ls.runtime.identify_client(f"{info.name} {info.version or ''}".strip() if info else "")
    # The model loads when first needed (a document it completes, a request): its
    # progress shows then.
    ls.runtime.load_started = lambda future: ls.keep(asyncio.ensure_future(_load_model(ls, future)))
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
    _report_setting_errors(ls)
    ls.runtime.attach_workspace()  # (no model yet: `Runtime.need_model`)
    asyncio.ensure_future(_build_index(ls))
    asyncio.ensure_future(_watch_files(ls))


def _report_setting_errors(ls: QwenLanguageServer) -> None:
    for message in ls.runtime.pending_errors:
        ls._notify_user(f"invalid setting, using the default: {message}")
    ls.runtime.pending_errors.clear()


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
    _report_setting_errors(ls)
    ls.runtime.settings_changed(before)
    if before.diagnostics != ls.runtime.settings.diagnostics:
        diagnostics.refresh_diagnostics(ls)


async def _load_model(ls: QwenLanguageServer, future: Future[None]) -> None:
    """The progress of a load the runtime started (the first need, or new settings)."""
    token = await begin_progress(ls, "qwen-lsp: loading the model", cancellable=False)
    try:
        await asyncio.wrap_future(future)
    except (Exception, asyncio.CancelledError) as exc:  # said by the runtime (showMessage)
        log.debug("model load ended: %r", exc)
    finally:
        end_progress(ls, token, ls.runtime.host.message)


async def _build_index(ls: QwenLanguageServer) -> None:
    if ls.runtime.context is None:
        return
    token = await begin_progress(ls, "qwen-lsp: indexing the workspace", cancellable=True)
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
        stats = await in_thread(lambda: ls.runtime.build_index(report, cancel), "qwen-lsp-index")
        message = stats if isinstance(stats, str) else "done"
    except Exception as exc:
        log.exception("indexing failed")
        message = f"indexing failed: {exc}"
    if not ls.runtime.closed:  # (after shutdown the client no longer listens)
        end_progress(ls, token, message)


@server.feature(types.SHUTDOWN)
def shutdown(ls: QwenLanguageServer, params: Any) -> None:
    for handle in [*ls._debounce.values(), *ls._diagnostics_debounce.values()]:
        handle.cancel()  # re-indexing after the engine is gone: no
    ls._debounce.clear()
    ls._diagnostics_debounce.clear()
    ls.runtime.close()


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
