"""What the server runs on, as plain Python: settings, the engine thread, the completer,
the workspace index. The LSP handlers in `server.py` call into this; tests can too.
"""

from __future__ import annotations

import dataclasses
import logging
import os
import threading
import time
from collections.abc import Callable, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any, TypeVar

from context.languages import language_of_document
from context.pack import document_name
from context.symbols import file_symbols
from context.types import Definition
from lsp_server.actions.plan import ActionPlan, Diagnostic, plan_actions
from lsp_server.actions.rewrite import Rewriter, RewriteRequest, RewriteResult
from lsp_server.completion.service import Completer, CompletionRequest, CompletionResult
from lsp_server.completion.stats import Stats
from lsp_server.engine.remote import RemoteConfig, RemoteEngine, ServerUnreachable
from lsp_server.engine.types import (
    Cancelled,
    CancelToken,
    Engine,
    EngineConfig,
    EngineError,
    file_identity,
)
from lsp_server.engine.worker import EngineWorker, Job, Priority
from lsp_server.settings import Settings

log = logging.getLogger(__name__)

REMOTE_RETRY_S = 5.0  # how often a completion request may retry an unusable serving engine

Notify = Callable[[str, str], None]
R = TypeVar("R")


def engine_config(settings: Settings, model_path: str) -> EngineConfig:
    m = settings.model
    return EngineConfig(
        model_path=model_path,
        n_ctx=m.context_size,
        n_gpu_layers=m.n_gpu_layers,
        flash_attention=m.flash_attention,
        kv_cache_type=m.kv_cache_type,
        n_threads=m.threads,
        n_batch=m.batch_size,
        checkpoint_bytes=settings.engine.checkpoint_memory_mb << 20,
        slots=settings.engine.slots,
    )


class Runtime:
    """Owns the engine worker and everything a request needs."""

    def __init__(self, settings: Settings, stats: Stats, notify: Notify | None = None) -> None:
        self.settings = settings
        self.init_settings = settings  # from initializationOptions: the base of later changes
        self.stats = stats
        self.notify: Notify = notify or (lambda message, level: log.warning("%s", message))
        self.roots: list[str] = []
        self.pending_errors: list[str] = []
        self.worker: EngineWorker[Any] = EngineWorker()
        # Edits reach the index in the order they were made: one thread applies them.
        self.documents = ThreadPoolExecutor(max_workers=1, thread_name_prefix="qwen-lsp-documents")
        self.engine: Engine | None = None
        self.completer: Completer | None = None
        self.rewriter: Rewriter | None = None
        self.model_state = "idle"  # idle | loading | ready | failed | disabled
        self.model_message = ""
        self.context: Any = None  # the workspace context (index, recent activity), if any
        self.index_state = "off"  # off | building | ready | cancelled | failed
        self.index_message = ""
        self._positions: dict[str, tuple[int, int]] = {}  # last cursor per document
        self._failed_file: tuple[str, tuple[int, ...] | None] = ("", None)  # the last load's
        self._remote_failed_at = 0.0  # when the serving engine could not be used
        self._remote_error = ""  # what was said about it
        self._index_cancel = threading.Event()  # of the build under way (if any)
        self._index_done = threading.Event()
        self._index_done.set()
        self._active = ""  # the document of the last completion request
        self._language_ids: dict[str, str] = {}  # open document -> the editor's language id
        self._closed = False

    # ---- model ------------------------------------------------------------------------

    @property
    def ready(self) -> bool:
        return (
            self.model_state == "ready"
            and self.completer is not None
            and self.settings.completion.enabled
        )

    def load_model(self) -> Future[None]:
        """(Re)load the model on the engine thread; failures are shown once, never raised."""
        self.model_state = "loading"
        self.worker.cancel_all()
        job = self.worker.submit(lambda token: self._load(), priority=Priority.USER, key="model")
        return job.future

    def _load(self) -> None:
        from lsp_server.engine.models import explicit_model_path, resolve_model

        self._close_engine()
        if self.settings.model.backend == "openai":
            self._connect()
            return
        resolution = resolve_model(self.settings.model.path)
        watched = str(resolution.path or explicit_model_path(self.settings.model.path) or "")
        self._failed_file = (watched, file_identity(watched) if watched else None)
        if resolution.path is None:
            self.model_state = "disabled"
            self.model_message = "completions are off: " + resolution.message
            self.notify(self.model_message, "warning")
            return
        try:
            from lsp_server.engine.llama import LlamaEngine  # loads llama.cpp

            engine = LlamaEngine(engine_config(self.settings, str(resolution.path)))
        except EngineError as exc:
            self.model_state = "failed"
            self.model_message = f"completions are off: {exc}"
            self.notify(self.model_message, "error")
            return
        except Exception as exc:  # llama.cpp can fail in ways we do not foresee
            log.exception("model load failed")
            self.model_state = "failed"
            self.model_message = f"completions are off: the model could not be loaded ({exc})"
            self.notify(self.model_message, "error")
            return
        self._use(engine)
        info = engine.info
        self.model_message = (
            f"{os.path.basename(info.path)} ready ({info.architecture}, {self.completer_format()} prompts, "
            f"{'GPU' if info.gpu_offload else 'CPU'})"
        )
        log.info("%s", self.model_message)

    def _connect(self) -> None:
        """backend "openai": the serving engine at model.url instead of a local model."""
        m = self.settings.model
        config = RemoteConfig(
            url=m.url,
            model=m.name,
            api_key=m.api_key or os.environ.get("QWEN_LSP_API_KEY", ""),
            n_ctx=m.context_size,
        )
        try:
            if not m.url.strip():
                raise EngineError(
                    'model.backend is "openai" but model.url is not set '
                    "(the serving engine's API, e.g. http://127.0.0.1:8080/v1)"
                )
            engine = RemoteEngine(config)
        except Exception as exc:  # EngineError: said plainly; anything else: a bug, still said
            if not isinstance(exc, EngineError):
                log.exception("cannot use the serving engine")
            self._remote_failed_at = time.monotonic()
            message = f"completions are off: {exc}"
            self.model_state = "failed"
            self.model_message = message
            if message != self._remote_error:  # a retry failing the same way is not said again
                self._remote_error = message
                self.notify(message, "error")
            return
        self._remote_error = ""
        self._use(engine)
        self.model_message = (
            f"{engine.model} at {m.url} ready ({self.completer_format()} prompts, "
            f"{engine.n_ctx} tokens of context)"
        )
        log.info("%s", self.model_message)

    def _use(self, engine: Engine) -> None:
        self.engine = engine
        completer = Completer(
            engine, self.settings, context=self._context_provider(), stats=self.stats
        )
        self.completer = completer
        self.rewriter = Rewriter(
            engine,
            self.settings,
            context=self._context_provider(),
            stats=self.stats,
        )
        self.model_state = "ready"

    def completer_format(self) -> str:
        return self.completer.format if self.completer is not None else ""

    def _on_model(
        self, user: Completer | Rewriter, call: Callable[[CancelToken], R]
    ) -> Callable[[CancelToken], R]:
        """A job for the engine thread bound to the engine loaded now: after a reload
        (queued ahead of it) that engine is freed, so the job stops before touching it."""

        def run(token: CancelToken) -> R:
            if user is not self.completer and user is not self.rewriter:
                raise Cancelled("the model was reloaded")
            engine = self.engine
            if engine is not None and engine.model_file_changed():
                self._model_file_changed()
                raise Cancelled("the model file changed on disk")
            return call(token)

        return run

    def engine_failed(self, error: Exception) -> None:
        """A request failed in the engine. A serving engine that can no longer be reached
        (stopped, restarted, the network gone) is said once, and the state says so (the
        editors' status shows it); requests then try it again every few seconds."""
        if not isinstance(error, ServerUnreachable):
            return
        message = f"completions are off: {error}"
        self._remote_failed_at = time.monotonic()
        self.model_state = "failed"
        self.model_message = message
        if message != self._remote_error:
            self._remote_error = message
            self.notify(message, "error")

    def retry_failed_model(self) -> bool:
        """After a failed load of a known file, load again once it has changed (a download
        that finished, a file copied over a truncated one, a missing file that appeared);
        with a serving engine, try it again every few seconds (started after the editor,
        or back after a restart). Cheap: one stat. True when a load was started."""
        if self.model_state == "failed" and self.settings.model.backend == "openai":
            # A serving engine started after the editor, or back after a restart.
            if time.monotonic() - self._remote_failed_at < REMOTE_RETRY_S:
                return False
            self._remote_failed_at = time.monotonic()
            log.info("trying the serving engine again")
            self.load_model()
            return True
        path, identity = self._failed_file
        if self.model_state not in ("failed", "disabled") or not path:
            return False
        now = file_identity(path)
        if now is None or now == identity:
            return False
        log.info("the model file changed since it failed to load: loading it again")
        self._failed_file = (path, now)
        self.load_model()
        return True

    def _model_file_changed(self) -> None:
        """The model file was replaced or rewritten (a new download, a copy over it): the
        loaded weights are mapped from it, so they are dropped unread and the file loaded
        again, here on the engine thread, before any other job runs."""
        path = self.engine.info.path if self.engine is not None else ""
        log.warning("the model file changed on disk: reloading %s", path)
        self.notify(f"the model file changed on disk: reloading {os.path.basename(path)}", "info")
        self.model_state = "loading"
        self._load()

    def _context_provider(self) -> Any:
        return self.context.provider() if self.context is not None else None

    def _close_engine(self) -> None:
        self.completer = None
        self.rewriter = None
        if self.engine is not None:
            self.engine.close()
            self.engine = None

    def apply_settings(self, before: Settings) -> bool:
        """Apply new settings; True when the model must be reloaded for them."""
        if self.completer is not None:
            self.completer.update_settings(self.settings)
        if self.rewriter is not None:
            self.rewriter.settings = self.settings
        return dataclasses.asdict(before.model) != dataclasses.asdict(self.settings.model) or (
            (before.engine.checkpoint_memory_mb, before.engine.slots)
            != (self.settings.engine.checkpoint_memory_mb, self.settings.engine.slots)
        )

    # ---- completions --------------------------------------------------------------------

    def completion_request(
        self, path: str, text: str, line: int, character: int
    ) -> CompletionRequest:
        if self.completes(path):  # (a note typed in must not become what is re-warmed)
            self._positions[path] = (line, character)
            self._active = path
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

        return self.worker.submit(
            self._on_model(completer, lambda token: completer.complete(request, token)),
            priority=Priority.USER,
            key=key,
            timeout_s=self.settings.completion.time_budget_ms / 1000,
        )

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
        lines = request.text.split("\n")
        line = lines[suggestion.line]
        inserted = line[: suggestion.character] + suggestion.text + line[suggestion.end_character :]
        new_lines = lines[: suggestion.line] + inserted.split("\n") + lines[suggestion.line + 1 :]
        last = suggestion.text.split("\n")
        new_line = suggestion.line + len(last) - 1
        new_char = (suggestion.character if len(last) == 1 else 0) + len(last[-1])
        accepted = dataclasses.replace(
            request, text="\n".join(new_lines), line=new_line, character=new_char
        )

        self.worker.submit(
            self._on_model(completer, lambda token: completer.complete(accepted, token)),
            priority=Priority.PREFETCH,
            key=f"prefetch:{key}",
        )

    def warm(self, key: str, request: CompletionRequest) -> None:
        completer = self.completer
        if not (self.settings.engine.warmup and completer):
            return

        self.worker.submit(
            self._on_model(completer, lambda token: completer.warm(request, token)),
            priority=Priority.WARMUP,
            key=f"warm:{key}",
        )

    # ---- code actions -------------------------------------------------------------------

    @property
    def code_actions_ready(self) -> bool:
        return (
            self.model_state == "ready"
            and self.rewriter is not None
            and self.settings.code_actions.enabled
        )

    def plan_code_actions(
        self,
        path: str,
        text: str,
        start_line: int,
        end_line: int,
        diagnostics: Sequence[Diagnostic],
    ) -> list[ActionPlan]:
        """The actions offered at a range (no model). Editors ask at every cursor move: the
        definitions come from the index's parse of the open document when it is of this
        very text, else from a parse of it."""
        language = language_of_document(path, self.language_id(path))
        definitions: Sequence[Definition] = ()
        if language is not None and len(text) <= self.settings.context.max_file_size:
            source = text.encode("utf-8", "surrogatepass")
            indexed = self.context.index.open_symbols(path, source) if self.context else None
            try:
                symbols = indexed or file_symbols(path, source, language)
                definitions = symbols.definitions
            except Exception:  # a grammar failure costs the refactors, not the fixes
                log.exception("cannot parse %s for code actions", path)
        return plan_actions(text, language, start_line, end_line, diagnostics, definitions)

    def submit_code_action(self, key: str, request: RewriteRequest) -> Job[RewriteResult]:
        rewriter = self.rewriter
        if rewriter is None:
            raise EngineError("the model is not loaded")

        return self.worker.submit(
            self._on_model(rewriter, lambda token: rewriter.run(request, token)),
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
        self._language_ids[path] = language_id
        if self.context is not None:
            self.context.note_view(path, 0)

    def language_id(self, path: str) -> str:
        """The editor's language id of an open document ("" when not known)."""
        return self._language_ids.get(path, "")

    def completes(self, path: str) -> bool:
        """Whether the document at ``path`` gets completions (``completion.languages``, by
        the language id it was opened with; a path never opened counts as "*")."""
        return self.settings.completion.enabled_for(self.language_id(path))

    def document_changed(self, path: str, text: str, warm: bool) -> None:
        """Runs on a worker thread after a pause in typing."""
        if self.context is not None:
            try:
                self.context.update_document(path, text)
            except Exception:
                log.exception("re-indexing %s failed", path)
        if warm:
            self._warm_at_last_position(path, text)
        elif path != self._active:
            self._rewarm_active()

    def _warm_at_last_position(self, path: str, text: str) -> None:
        if not (self.ready and self.completes(path)):
            return
        line, character = self._positions.get(path, (0, 0))
        lines = text.split("\n")
        line = min(line, len(lines) - 1)
        request = self.completion_request(path, text, line, min(character, len(lines[line])))
        self.warm(path, request)

    def _rewarm_active(self) -> None:
        """Another file changed, so may the active document's context: re-warm it while idle."""
        active = self._active
        if not active or self.context is None:
            return
        text = self.context.index.text(active)
        if text is not None:
            self._warm_at_last_position(active, text)

    def document_closed(self, path: str) -> None:
        self._language_ids.pop(path, None)
        self._positions.pop(path, None)
        if self._active == path:
            self._active = ""  # closed: nothing to keep warm for it
        if self.context is not None:
            self.context.close_document(path)

    def recent_edit(self, path: str, start_line: int, end_line: int, line_delta: int = 0) -> None:
        if self.context is not None:
            self.context.note_edit(path, start_line, end_line, line_delta)

    def files_changed(self, changes: list[tuple[str, bool]]) -> None:
        if self.context is not None:
            self.context.files_changed(changes)
            self._rewarm_active()

    def attach_workspace(self, cache_dir: str | None = None) -> None:
        """Create the workspace context (index, recent activity) for the roots; not built yet."""
        if not self.roots or not self.settings.context.enabled or self.context is not None:
            return
        try:
            from lsp_server.workspace_context import WorkspaceContext

            self.context = WorkspaceContext(self.roots, lambda: self.settings, cache_dir)
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
        self.index_state = "building"
        try:
            summary = str(self.context.build(progress, cancel))
        except Exception:
            self.index_state = "failed"
            raise
        finally:
            self._index_done.set()
        self.index_state = "cancelled" if cancel.is_set() else "ready"
        self.index_message = summary
        return summary

    def stop_indexing(self, timeout: float = 10.0) -> None:
        """Cancel a build under way and wait (up to `timeout`) until it has stopped and
        saved what it parsed: the store must not be closed under it."""
        self._index_cancel.set()
        if not self._index_done.wait(timeout):
            log.warning("the index build did not stop within %.0f s", timeout)

    # ---- stats and shutdown ------------------------------------------------------------

    def stats_snapshot(self) -> dict[str, Any]:
        extra: dict[str, Any] = {
            "model": self.model_state,
            "modelMessage": self.model_message,
            "index": self.index_state,
            "indexMessage": self.index_message,
        }
        if self.engine is not None:
            extra.update(self.engine.describe())
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
        self.stop_indexing()
        self.worker.cancel_all()
        job = self.worker.submit(lambda token: self._close_engine(), priority=Priority.USER)
        try:
            job.future.result(timeout=10)
        except Exception:
            log.warning("the engine did not close cleanly")
        self.worker.shutdown()
        # The documents thread finishes the file it is on (a batch of file changes stops
        # there) before the index's store is closed under it.
        if self.context is not None:
            self.context.stop()
        self.documents.shutdown(wait=True, cancel_futures=True)
        if self.context is not None:
            self.context.close()
