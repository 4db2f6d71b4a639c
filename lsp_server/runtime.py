"""What the server runs on, as plain Python: the wiring of the settings, the model host
(the engine thread), the completer and the code actions, the open documents and the
workspace index. The LSP handlers in `protocol/` call into this (through `requests.py`
for completions and code actions); tests and the `complete` command can too.

Threads, and what each owns:
- the event loop (pygls): `settings`, `init_settings`, `roots`, `pending_errors`,
  `context` (set once by `attach_workspace`); it writes `open_documents` on open, close
  and each completion request, and submits jobs;
- the engine thread (`host.worker`): the engine, and `completer` and `rewriter` (built on
  it when a model loads: `_use`) run only there; the event loop only takes the reference
  to bind a job to it, and hands them new settings (`apply_settings`);
- the documents thread (`documents`): applies edits and file changes to the index in
  order and warms the engine from `open_documents` (under its lock);
- the index thread (`aio.in_thread`, started by `protocol/server.py`): `build_index`,
  `index_state` and `index_message`.
"""

from __future__ import annotations

import dataclasses
import logging
import os
import threading
from collections.abc import Callable, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from enum import Enum
from typing import TYPE_CHECKING, Any

from context.languages import language_of_document
from context.pack import document_name
from context.secrets import is_secret_file
from context.symbols import file_symbols
from context.types import Definition
from lsp_server.actions.diagnostics import SyntaxProblem, SyntaxTrees
from lsp_server.actions.plan import ActionPlan, Diagnostic, plan_actions
from lsp_server.actions.rewrite import Rewriter, RewriteRequest, RewriteResult
from lsp_server.completion.service import (
    Completer,
    CompletionRequest,
    CompletionResult,
    ContextProvider,
)
from lsp_server.completion.stats import Stats
from lsp_server.documents import OpenDocuments, after_accepting
from lsp_server.engine.client import ClientInfo
from lsp_server.engine.host import ModelHost, ModelState, Notify
from lsp_server.engine.types import Engine, EngineError, Figures
from lsp_server.engine.worker import Job, Priority
from lsp_server.settings import Settings

if TYPE_CHECKING:  # (imported when a workspace is attached)
    from lsp_server.workspace import Workspace

log = logging.getLogger(__name__)

# Seconds without an edit or a request in a document before the stable part of its prompt
# (the file's snapshot, the kept context) is refreshed in the background.
REFRESH_AFTER_S = 1.0


class IndexState(str, Enum):
    """Where the workspace index is; the value is what `qwenLsp/stats` reports as `index`."""

    OFF = "off"  # no workspace, or `context.enabled` is false
    BUILDING = "building"
    READY = "ready"
    CANCELLED = "cancelled"  # stopped by the user or the shutdown: what was parsed is kept
    FAILED = "failed"


class Runtime:
    """Wires the model host, the completer, the code actions, the open documents and
    the workspace context together (see the module docstring for who owns what)."""

    def __init__(self, settings: Settings, stats: Stats, notify: Notify | None = None) -> None:
        self.settings = settings
        self.init_settings = settings  # from initializationOptions: the base of later changes
        self.stats = stats
        self.notify: Notify = notify or (lambda message, level: log.warning("%s", message))
        self.roots: list[str] = []
        self.pending_errors: list[str] = []
        self.host = ModelHost(
            lambda: self.settings,
            self.notify,
            on_load=self._use,
            on_unload=self._drop_engine_users,
        )
        # Edits reach the index in the order they were made: one thread applies them.
        self.documents = ThreadPoolExecutor(max_workers=1, thread_name_prefix="qwen-lsp-documents")
        self.completer: Completer | None = None
        self.rewriter: Rewriter | None = None
        self.context: Workspace | None = None  # index, recent activity (if any)
        self.index_state = IndexState.OFF
        self.index_message = ""
        self._index_cancel = threading.Event()  # of the build under way (if any)
        self._index_done = threading.Event()
        self._index_done.set()
        self.open_documents = OpenDocuments()
        self._refresh_timers: dict[str, threading.Timer] = {}  # per document, after edits
        self.syntax = SyntaxTrees()  # open documents' trees, for syntax errors and fixes
        # The definitions of the last text actions were listed for, without an index.
        self._definitions: dict[str, tuple[bytes, Sequence[Definition]]] = {}
        self._damage_told: set[str] = set()  # damaged index databases the user was told of
        self._damage_lock = threading.Lock()  # (the index and documents threads tell)
        self._closed = False
        # Told of each load that starts (the server shows its progress); event loop.
        self.load_started: Callable[[Future[None]], None] = lambda future: None
        # The warm-up asked for while the first load ran: done once it ends.
        self._pending_warm: tuple[str, CompletionRequest] | None = None
        self._pending_lock = threading.Lock()

    # ---- model ------------------------------------------------------------------------

    @property
    def ready(self) -> bool:
        return self.host.ready and self.completer is not None and self.settings.completion.enabled

    def load_model(self) -> Future[None]:
        """(Re)load the model on the engine thread; failures are shown once, never raised.
        Once it is ready, the document being edited is warmed: it may have been opened
        while the model loaded, and its first request must not pay the whole prompt."""
        return self._started(self.host.load())

    def need_model(self) -> Future[None] | None:
        """Something needs the model: start loading it unless it is loaded or loading (or
        a failure is not worth another try yet); the load started, else None. Nothing
        else loads it (docs/shared-engine.md): a server with only Markdown or a commit
        message open, or with completions off, never does. Event loop."""
        future = self.host.need()
        return self._started(future) if future is not None else None

    def settings_changed(self, before: Settings) -> None:
        """After `apply_settings`: reload a model in use whose load settings changed; load
        it when an open document gets completions now (completions turned on)."""
        if self.apply_settings(before):
            self.load_model()
        elif self.host.state is ModelState.IDLE and any(
            self.completes(path) for path in self.open_documents.paths()
        ):
            self.need_model()

    def _started(self, future: Future[None]) -> Future[None]:
        self.load_started(future)
        future.add_done_callback(self._after_load)
        return future

    def _after_load(self, done: Future[None]) -> None:
        """A load ended (engine thread): warm what was opened or edited while it ran."""
        if done.cancelled() or done.exception() is not None or self._closed or not self.ready:
            return
        try:
            self.documents.submit(self._warm_after_load)
        except RuntimeError:  # shutting down
            pass

    def _warm_after_load(self) -> None:
        """The warm-up asked for while the model loaded, else the active document's."""
        with self._pending_lock:
            pending, self._pending_warm = self._pending_warm, None
        if pending is not None and pending[1].path in self.open_documents.paths():
            self.warm(*pending)
        else:
            self._rewarm_active()

    @property
    def warmable(self) -> bool:
        """Whether a warm-up is worth preparing: the model serves, or is loading (the
        warm-up then runs once it is loaded)."""
        return self.ready or (self.host.loading is not None and self.settings.completion.enabled)

    def _use(self, engine: Engine) -> str:
        """Build the completer and the code actions on a new engine (engine thread)."""
        self.completer = Completer(
            engine, self.settings, context=self._context_provider(), stats=self.stats
        )
        self.rewriter = Rewriter(
            engine, self.settings, context=self._context_provider(), stats=self.stats
        )
        return self.completer.format

    def _drop_engine_users(self) -> None:
        self.completer = None
        self.rewriter = None

    def _context_provider(self) -> ContextProvider | None:
        return self.context.provider() if self.context is not None else None

    def identify_client(self, editor: str) -> None:
        """Name this server in the shared engine's list of editors (on `initialize`, once
        the roots are known): the editor ("Neovim 0.12.0"), the workspace, the process."""
        self.host.client = ClientInfo(
            editor or "qwen-lsp",
            os.path.basename(self.roots[0]) if self.roots else "",
            os.getpid(),
        )

    def apply_settings(self, before: Settings) -> bool:
        """Apply new settings; True when the model must be reloaded for them (never
        before it was first needed)."""
        if self.completer is not None:
            self.completer.update_settings(self.settings)
        if self.rewriter is not None:
            self.rewriter.settings = self.settings
        if self.host.state is ModelState.IDLE:
            return False  # never loaded: it loads with the new settings when needed
        return dataclasses.asdict(before.model) != dataclasses.asdict(self.settings.model) or (
            (before.engine.checkpoint_memory_mb, before.engine.slots)
            != (self.settings.engine.checkpoint_memory_mb, self.settings.engine.slots)
        )

    # ---- completions --------------------------------------------------------------------

    def completion_request(
        self, path: str, text: str, line: int, character: int
    ) -> CompletionRequest:
        if self.completes(path):  # (a note typed in must not become what is re-warmed)
            self.open_documents.cursor_at(path, line, character)
        root = self.root_of(path)
        return CompletionRequest(
            path=path,
            text=text,
            line=line,
            character=character,
            display_path=self.display_path(path),
            repo_name=os.path.basename(root) if root else "",
            language_id=self.language_id(path),
        )

    def root_of(self, path: str) -> str | None:
        for root in sorted(self.roots, key=len, reverse=True):
            if path == root or path.startswith(root.rstrip(os.sep) + os.sep):
                return root
        return None

    def submit_completion(self, key: str, request: CompletionRequest) -> Job[CompletionResult]:
        completer = self.completer
        if completer is None:
            raise EngineError("the model is not loaded")
        timer = self._refresh_timers.get(request.path)
        if timer is not None and timer.is_alive():  # not idle yet: wait again
            self._warm_at_last_position(request.path, request.text, REFRESH_AFTER_S)

        return self.host.submit(
            completer.engine,
            lambda token: completer.complete(request, token),
            priority=Priority.USER,
            key=key,
            timeout_s=self.settings.completion.time_budget_ms / 1000,
        )

    def completion_failed(self, request: CompletionRequest, error: EngineError) -> None:
        """A completion failed in the engine: logged (not a popup on every keystroke),
        counted, and an engine that can no longer be reached is marked so."""
        log.error("completion failed: %s", error)
        self.stats.record(
            Figures(), kind="completion", path=request.path, total_ms=0.0, outcome="error"
        )
        self.host.engine_failed(error)

    def after_completion(
        self, key: str, request: CompletionRequest, result: CompletionResult
    ) -> None:
        """Speculative prefetch: compute the next suggestion as if this one were accepted."""
        suggestion = result.suggestion
        completer = self.completer
        if (
            not (self.settings.engine.prefetch and suggestion and completer)
            or result.outcome == "cache"
        ):
            return
        text, line, character = after_accepting(request.text, suggestion)
        accepted = dataclasses.replace(
            request, text=text, line=line, character=character, speculative=True
        )

        self.host.submit(
            completer.engine,
            lambda token: completer.complete(accepted, token),
            priority=Priority.PREFETCH,
            key=f"prefetch:{key}",
        )

    def warm(self, key: str, request: CompletionRequest, delay_s: float = 0.0) -> None:
        """Refresh and evaluate the stable part of `request`'s prompt in the background
        (lowest priority: requests preempt it), after `delay_s` seconds without another
        edit or request in the document."""
        loading = self.host.loading
        completer = self.completer
        if not self.settings.engine.warmup:
            return
        if completer is None:
            if loading is not None:  # the first load: warmed once it ends (`_loaded`)
                with self._pending_lock:
                    self._pending_warm = (key, request)
            return
        timer = self._refresh_timers.pop(key, None)
        if timer is not None:
            timer.cancel()
        if delay_s > 0:
            timer = threading.Timer(delay_s, self.warm, (key, request))
            timer.daemon = True
            self._refresh_timers[key] = timer
            timer.start()
            return

        self.host.submit(
            completer.engine,
            lambda token: completer.warm(request, token),
            priority=Priority.WARMUP,
            key=f"warm:{key}",
        )

    # ---- code actions -------------------------------------------------------------------

    @property
    def code_actions_ready(self) -> bool:
        return self.host.ready and self.rewriter is not None and self.settings.code_actions.enabled

    def plan_code_actions(
        self,
        path: str,
        text: str,
        start_line: int,
        end_line: int,
        diagnostics: Sequence[Diagnostic],
        only: Sequence[str] = (),
        selection: bool = False,
    ) -> list[ActionPlan]:
        """The actions offered at a range (no model), of the kinds in `only` when given
        ("refactor" includes "refactor.rewrite"). Editors ask at every cursor move: the
        definitions come from the index's parse of the open document when it is of this
        very text, else from a parse of it; the syntax errors from the document's tree."""
        if not self.may_send(path):
            return []  # nothing that would send the file's text
        language = language_of_document(path, self.language_id(path))
        definitions: Sequence[Definition] = ()
        parsed = None
        if language is not None and len(text) <= self.settings.context.max_file_size:
            if diagnostics:
                try:
                    parsed = self.syntax.view(path, text, language)
                except Exception:  # the fixes are then planned as for any diagnostic
                    log.exception("cannot parse %s for its syntax errors", path)
            source = text.encode("utf-8", "surrogatepass")
            indexed = self.context.index.open_symbols(path, source) if self.context else None
            try:
                cached = self._definitions.get(path)
                if indexed is not None:
                    definitions = indexed.definitions
                elif cached is not None and cached[0] == source:
                    definitions = cached[1]  # the cursor moved, the text did not
                else:
                    # (from the document's parts: after an edit, only the part edited)
                    view = parsed or self.syntax.view(path, text, language)
                    if view is not None:
                        definitions = view.definitions(path)
                    else:
                        definitions = file_symbols(path, source, language).definitions
                    self._definitions = {path: (source, definitions)}
            except Exception:  # a grammar failure costs the refactors, not the fixes
                log.exception("cannot parse %s for code actions", path)
        plans = plan_actions(
            text,
            language,
            start_line,
            end_line,
            diagnostics,
            definitions,
            selection=selection,
            parsed=parsed,
        )
        if only:
            plans = [
                p for p in plans if any(p.kind == k or p.kind.startswith(f"{k}.") for k in only)
            ]
        return plans

    @property
    def code_actions_offered(self) -> bool:
        """Whether actions are listed: they are planned without the model, which loads
        when one is picked (unless its load failed)."""
        return self.settings.code_actions.enabled and (
            self.code_actions_ready or self.host.state in (ModelState.IDLE, ModelState.LOADING)
        )

    def code_actions_off(self) -> str:
        """Why code actions cannot run now ("" when they can)."""
        if not self.settings.code_actions.enabled:
            return "code actions are off (qwenLsp.codeActions.enabled is false)"
        if not self.code_actions_ready:
            return "code actions wait for the model: " + (self.host.message or "not loaded")
        return ""

    def checks_syntax(self, length: int) -> bool:
        """Whether a document of ``length`` code points gets syntax diagnostics."""
        return self.settings.diagnostics.enabled and length <= self.settings.context.max_file_size

    def syntax_problems(self, path: str, text: str) -> list[SyntaxProblem]:
        """The syntax errors of an open document (``diagnostics.enabled``); incremental."""
        if not self.checks_syntax(len(text)):
            return []
        language = language_of_document(path, self.language_id(path))
        return self.syntax.problems(path, text, language)

    def submit_code_action(self, key: str, request: RewriteRequest) -> Job[RewriteResult]:
        rewriter = self.rewriter
        if rewriter is None:
            raise EngineError("the model is not loaded")

        return self.host.submit(
            rewriter.engine,
            lambda token: rewriter.run(request, token),
            priority=Priority.USER,
            key=f"action:{key}",
            timeout_s=self.settings.code_actions.time_budget_ms / 1000,
        )

    def display_path(self, path: str) -> str:
        root = self.root_of(path)
        display = os.path.relpath(path, root) if root else document_name(path)
        return display.replace(os.sep, "/")

    # ---- documents and the index --------------------------------------------------------

    def document_opened(self, path: str, text: str, language_id: str = "") -> None:
        """A document was opened (event loop). One that gets completions (not Markdown,
        a commit message, a language turned off, nor any with completions off) starts
        the model's load in the background: its first suggestion waits only for the rest."""
        self.open_documents.opened(path, language_id)
        if self.context is not None:
            self.context.note_view(path, 0)
        if self.host.state is ModelState.IDLE and self.completes(path):
            self.need_model()

    def language_id(self, path: str) -> str:
        """The editor's language id of an open document ("" when not known)."""
        return self.open_documents.language_id(path)

    def completes(self, path: str) -> bool:
        """Whether the document at ``path`` gets completions (``completion.languages``, by
        the language id it was opened with; a path never opened counts as "*"). A file
        whose name marks it as secret (``.env``, ``id_rsa``) is never sent to a serving
        engine."""
        return self.may_send(path) and self.settings.completion.enabled_for(self.language_id(path))

    def may_send(self, path: str) -> bool:
        """Whether the text of the document at ``path`` may go to the engine: a file whose
        name marks it as secret (``.env``, ``id_rsa``, ``credentials.json``) never goes
        to a serving engine (``model.backend`` ``openai``), neither for completions nor
        for code actions."""
        return not (self.settings.model.backend == "openai" and is_secret_file(path))

    def document_changed(self, path: str, text: str, warm: bool) -> None:
        """Runs on a worker thread after a pause in typing."""
        if self.context is not None:
            try:
                self.context.update_document(path, text)
            except Exception:
                log.exception("re-indexing %s failed", path)
            self._tell_damaged_index()  # (found by this write)
        if warm:
            self._warm_at_last_position(path, text)
        elif path != self.open_documents.active:
            self._rewarm_active()
        else:
            # The snapshot of the file in the prompt's stable part is refreshed once the
            # user pauses (docs/context.md); until then requests keep the old one.
            self._warm_at_last_position(path, text, REFRESH_AFTER_S)

    def _warm_at_last_position(self, path: str, text: str, delay_s: float = 0.0) -> None:
        if not (self.warmable and self.completes(path)):
            return
        line, character = self.open_documents.warm_position(path, text)
        request = self.completion_request(path, text, line, character)
        self.warm(path, request, delay_s)

    def _rewarm_active(self) -> None:
        """Another file changed, so may the active document's context: re-warm it while idle."""
        active = self.open_documents.active
        if not active or self.context is None:
            return
        text = self.context.index.text(active)
        if text is not None:
            self._warm_at_last_position(active, text)

    def document_closed(self, path: str) -> None:
        self.open_documents.closed(path)
        self.syntax.forget(path)
        if self.context is not None:
            self.context.close_document(path)

    def recent_edit(self, path: str, start_line: int, end_line: int, line_delta: int = 0) -> None:
        if self.context is not None:
            self.context.note_edit(path, start_line, end_line, line_delta)

    def files_changed(self, changes: list[tuple[str, bool]]) -> None:
        if self.context is not None:
            self.context.files_changed(changes)
            self._tell_damaged_index()
            self._rewarm_active()

    def attach_workspace(self, cache_dir: str | None = None) -> None:
        """Create the workspace context (index, recent activity) for the roots; not built yet."""
        if not self.roots or not self.settings.context.enabled or self.context is not None:
            return
        try:
            from lsp_server.workspace import Workspace

            self.context = Workspace(self.roots, lambda: self.settings, cache_dir)
        except Exception as exc:  # completions still work on the current file alone
            log.exception("the workspace index could not be created")
            self.notify(f"multi-file context is off: {exc}", "warning")
            return
        if self.completer is not None:
            self.completer.context = self.context.provider()

    def build_index(
        self, progress: Callable[[int, int, str], None] | None, cancel: threading.Event | None
    ) -> str:
        """Index the workspace (blocking: call from a worker thread)."""
        if self.context is None or self._closed:
            return "no index"
        cancel = cancel or threading.Event()
        self._index_cancel = cancel
        self._index_done.clear()
        self.index_state = IndexState.BUILDING
        try:
            summary = str(self.context.build(progress, cancel))
        except Exception:
            self.index_state = IndexState.FAILED
            raise
        finally:
            self._index_done.set()
            self._tell_damaged_index()
        self.index_state = IndexState.CANCELLED if cancel.is_set() else IndexState.READY
        self.index_message = summary
        # The multi-file context of the document being edited has changed: warm it anew.
        self._rewarm_active()
        return summary

    def _tell_damaged_index(self) -> None:
        """A damaged index database is set aside and rebuilt by the index (and logged
        there): the user is told once, in the editor, since completions lack the
        workspace's context until the rebuild ends."""
        if self.context is None:
            return
        damaged = self.context.index.damaged_databases()
        with self._damage_lock:
            new = [path for path in damaged if path not in self._damage_told]
            self._damage_told.update(new)
        for path in new:
            self.notify(
                f"the index database was damaged: set aside as {os.path.basename(path)}.corrupt "
                "and rebuilt (the log has the details)",
                "warning",
            )

    def stop_indexing(self, timeout: float = 10.0) -> None:
        """Cancel a build under way and wait (up to `timeout`) until it has stopped and
        saved what it parsed: the store must not be closed under it."""
        self._index_cancel.set()
        if not self._index_done.wait(timeout):
            log.warning("the index build did not stop within %.0f s", timeout)

    # ---- stats and shutdown ------------------------------------------------------------

    def stats_snapshot(self) -> dict[str, Any]:
        extra: dict[str, Any] = {
            "model": self.host.state.value,
            "modelMessage": self.host.message,
            "index": self.index_state.value,
            "indexMessage": self.index_message,
        }
        if self.host.engine is not None:
            extra.update(self.host.describe())
            extra["promptFormat"] = self.completer.format if self.completer else None
        return self.stats.snapshot(extra)

    @property
    def closed(self) -> bool:
        """Whether `close` has begun (the server is shutting down)."""
        return self._closed

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        for timer in list(self._refresh_timers.values()):
            timer.cancel()
        self.stop_indexing()
        self.host.close()
        # The documents thread finishes the file it is on (a batch of file changes stops
        # there) before the index's store is closed under it.
        if self.context is not None:
            self.context.stop()
        self.documents.shutdown(wait=True, cancel_futures=True)
        if self.context is not None:
            self.context.close()
