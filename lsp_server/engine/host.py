"""The model host: the engine's owner thread and the engine loaded on it.

`ModelHost` makes the engine that `model.backend` names (through `create_engine`, the
one place that knows the kinds of engine), reloads it when its model file changes on
disk, tries again after a failure (a model file that appears or is replaced, a serving
engine that comes up), keeps the state the editors show, and closes the engine.

Threads: everything that touches the engine runs as a job on `worker`, the engine's
owner thread: loading, closing and the jobs of `submit`. `state` and `message` are
written there, and by `load` and `engine_failed` on the caller's thread (the event
loop); anyone may read them (one reference each).
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Callable
from concurrent.futures import Future
from dataclasses import dataclass
from enum import Enum
from typing import Any, TypeVar

from lsp_server.engine.client import ClientInfo
from lsp_server.engine.types import (
    Cancelled,
    CancelToken,
    Engine,
    EngineConfig,
    EngineError,
    EngineUnreachable,
    ModelLoadError,
    file_identity,
)
from lsp_server.engine.worker import EngineWorker, Job, Priority
from lsp_server.settings import Settings

log = logging.getLogger(__name__)

RETRY_S = 5.0  # how often a request may try again an engine that could not be reached
NOT_LOADED = "not loaded yet (loads at the first completion)"
LOST_QUIET_S = 60.0  # an engine process that keeps dying is said once a minute

Notify = Callable[[str, str], None]  # (message, level: "error" | "warning" | "info")
R = TypeVar("R")


class ModelState(str, Enum):
    """Where the model is; the value is what `qwenLsp/stats` reports as `model`."""

    IDLE = "idle"  # nothing asked yet: not loaded (`ModelHost.need`)
    LOADING = "loading"
    READY = "ready"
    FAILED = "failed"  # the load failed or the engine was lost: tried again (`retry`)
    DISABLED = "disabled"  # no model file set or found: completions are off


class EngineUnavailable(EngineError):
    """No engine could be made; the message says why, for the user.

    `watch`: a file whose change is worth another try (a download that finishes);
    `retry`: try again every `RETRY_S` (a serving engine that may come up);
    `disabled`: there is no model to load at all (a state, said as a warning).
    """

    def __init__(
        self, message: str, *, watch: str = "", retry: bool = False, disabled: bool = False
    ) -> None:
        super().__init__(message)
        self.watch = watch
        self.retry = retry
        self.disabled = disabled


@dataclass(frozen=True, slots=True)
class NewEngine:
    """What `create_engine` made: the engine, and its state line once in use."""

    engine: Engine
    ready_message: Callable[[str], str]  # given the prompt format chosen for it


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


def create_engine(settings: Settings, client: ClientInfo | None = None) -> NewEngine:
    """The engine `model.backend` names; raises `EngineUnavailable`. Runs on the engine
    thread. A new kind of engine is one more branch here. `client`: who this server is,
    for the shared engine's list of editors."""
    if settings.model.backend == "openai":
        return _serving_engine(settings)
    return _local_engine(settings, client or ClientInfo())


def _local_engine(settings: Settings, client: ClientInfo) -> NewEngine:
    """The GGUF model, in the engine process (shared by the user's editors unless
    `engine.shared` is off; docs/shared-engine.md), loaded only now."""
    from lsp_server.engine.client import local_engine
    from lsp_server.engine.models import explicit_model_path, resolve_model

    resolution = resolve_model(settings.model.path)
    watch = str(resolution.path or explicit_model_path(settings.model.path) or "")
    if resolution.path is None:
        raise EngineUnavailable(resolution.message, watch=watch, disabled=True)
    try:
        engine = local_engine(
            engine_config(settings, str(resolution.path)),
            shared=settings.engine.shared,
            idle_exit_s=settings.engine.idle_exit_seconds,
            client=client,
            log_level=logging.getLevelName(logging.getLogger().getEffectiveLevel()),
        )
    except EngineUnreachable as exc:  # the engine process cannot be started: tried again
        raise EngineUnavailable(str(exc), retry=True) from exc
    except EngineError as exc:
        raise EngineUnavailable(str(exc), watch=watch) from exc
    except Exception as exc:  # llama.cpp can fail in ways we do not foresee
        log.exception("model load failed")
        raise EngineUnavailable(f"the model could not be loaded ({exc})", watch=watch) from exc
    info = engine.info

    def ready(prompt_format: str) -> str:
        where = "GPU" if info.gpu_offload else "CPU"
        return (
            f"{os.path.basename(info.path)} ready "
            f"({info.architecture}, {prompt_format} prompts, {where})"
        )

    return NewEngine(engine, ready)


def _serving_engine(settings: Settings) -> NewEngine:
    """backend "openai": the serving engine at model.url instead of a local model."""
    from lsp_server.engine.remote import RemoteConfig, RemoteEngine

    m = settings.model
    if not m.url.strip():
        raise EngineUnavailable(
            'model.backend is "openai" but model.url is not set '
            "(the serving engine's API, e.g. http://127.0.0.1:8080/v1)",
            retry=True,
        )
    config = RemoteConfig(
        url=m.url,
        model=m.name,
        api_key=m.api_key or os.environ.get("QWEN_LSP_API_KEY", ""),
        n_ctx=m.context_size,
        allow_insecure_http=m.allow_insecure_http,
    )
    try:
        engine = RemoteEngine(config)
    except Exception as exc:  # EngineError: said plainly; anything else: a bug, still said
        if not isinstance(exc, EngineError):
            log.exception("cannot use the serving engine")
        raise EngineUnavailable(str(exc), retry=True) from exc

    def ready(prompt_format: str) -> str:
        return (
            f"{engine.model} at {engine.shown_url} ready ({prompt_format} prompts, "
            f"{engine.n_ctx} tokens of context)"
        )

    return NewEngine(engine, ready)


class ModelHost:
    """The engine thread and the engine on it: load, reload, retry, fail, close.

    `on_load(engine)` builds what uses a new engine (on the engine thread, before the
    state says ready) and returns the prompt format chosen for it; `on_unload()` drops
    it before the engine is closed.
    """

    def __init__(
        self,
        settings: Callable[[], Settings],
        notify: Notify,
        *,
        on_load: Callable[[Engine], str],
        on_unload: Callable[[], None],
        create: Callable[[Settings], NewEngine] | None = None,
    ) -> None:
        self._settings = settings
        self._notify = notify
        self._on_load = on_load
        self._on_unload = on_unload
        self.client = ClientInfo()  # this server, as the shared engine lists it
        self._create = create or (lambda s: create_engine(s, self.client))
        self._lost_said_at: float | None = None  # when an engine crash was last said
        self.worker: EngineWorker[Engine] = EngineWorker()
        self.engine: Engine | None = None  # engine thread
        self.state = ModelState.IDLE
        self.message = NOT_LOADED  # the state in words, for the editors' status
        self._loading: Future[None] | None = None  # the last load asked (`load`)
        # After a failure: the file to watch (and its identity then), or when a failure
        # that is tried again by time happened, and what was said about it.
        self._watch: tuple[str, tuple[int, ...] | None] = ("", None)
        self._failed_at: float | None = None
        self._said = ""

    @property
    def ready(self) -> bool:
        return self.state is ModelState.READY and self.engine is not None

    # ---- loading ----------------------------------------------------------------------

    def load(self) -> Future[None]:
        """(Re)load the engine on the engine thread, ahead of every queued job; failures
        are shown once, never raised."""
        self.state = ModelState.LOADING
        self.message = "loading the model"
        self.worker.cancel_all()
        job = self.worker.submit(lambda token: self._load(), priority=Priority.USER, key="model")
        self._loading = job.future
        return job.future

    def need(self) -> Future[None] | None:
        """A request needs the model (or a document it will complete was opened): load it
        if nothing was asked yet, or again when a failure may be over (`retry`). The load
        this started, None when none was started (loaded, loading, or not to be tried
        now). Nothing loads before this: an editor with only a commit message or a
        Markdown file open costs no memory for the model."""
        if self.state is ModelState.IDLE:
            log.info("the model is needed: loading it")
            return self.load()
        return self._loading if self.retry() else None

    @property
    def loading(self) -> Future[None] | None:
        """The load under way (None when none is), for a request to wait for."""
        future = self._loading
        return future if future is not None and not future.done() else None

    def reload(self) -> Future[None] | None:
        """New load settings: load again, unless the model was never asked for (then it
        loads with them when it is)."""
        return None if self.state is ModelState.IDLE else self.load()

    def _load(self) -> None:
        self._close_engine()
        self._watch, self._failed_at = ("", None), None
        try:
            made = self._create(self._settings())
        except EngineUnavailable as exc:
            self._unavailable(exc)
            return
        try:
            prompt_format = self._on_load(made.engine)
        except Exception as exc:  # (a chat template that cannot be rendered, a bug)
            log.exception("the engine could not be put to use")
            self._on_unload()
            made.engine.close()
            self._unavailable(EngineUnavailable(f"the model could not be used ({exc})"))
            return
        self.engine = made.engine  # (jobs are bound to it from now on)
        self.state = ModelState.READY
        self._said = ""
        self.message = made.ready_message(prompt_format)
        log.info("%s", self.message)

    def _unavailable(self, exc: EngineUnavailable) -> None:
        message = f"completions are off: {exc}"
        self._watch = (exc.watch, file_identity(exc.watch) if exc.watch else None)
        self.message = message
        if exc.disabled:
            self.state = ModelState.DISABLED
            self._notify(message, "warning")
            return
        self.state = ModelState.FAILED
        if not exc.retry:
            self._notify(message, "error")
            return
        self._failed_at = time.monotonic()
        if message != self._said:  # a retry failing the same way is not said again
            self._said = message
            self._notify(message, "error")

    def engine_failed(self, error: Exception) -> None:
        """A request failed in the engine. An engine that can no longer be reached (a
        serving engine stopped or restarted, the network gone) is said once, and the state
        says so (the editors' status shows it); requests then try it again every few
        seconds (`retry`)."""
        from lsp_server.engine.client import EngineProcessLost

        if isinstance(error, EngineProcessLost):
            # The engine process died (llama.cpp crashed or was killed): this server
            # lives on, and the next request starts the engine again. Said once (at most
            # once a minute, for an engine that keeps dying).
            now = time.monotonic()
            if self._lost_said_at is None or now - self._lost_said_at > LOST_QUIET_S:
                self._lost_said_at = now
                self._notify(str(error), "warning")
            return
        if isinstance(error, EngineUnreachable):
            self._unavailable(EngineUnavailable(str(error), retry=True))
        elif isinstance(error, ModelLoadError):
            # The engine started again, but the model no longer loads (a file truncated
            # under it): off until the file changes, as after any failed load.
            engine = self.engine
            self._unavailable(
                EngineUnavailable(str(error), watch=engine.info.path if engine else "")
            )

    def retry(self) -> bool:
        """After a failure, load again when it may succeed now: a serving engine every few
        seconds (started after the editor, back after a restart); a model file once it has
        changed (a download that finished, a file copied over a truncated one, a missing
        file that appeared). Cheap: one stat. True when a load was started."""
        if self.state is ModelState.FAILED and self._failed_at is not None:
            if time.monotonic() - self._failed_at < RETRY_S:
                return False
            self._failed_at = time.monotonic()
            log.info("trying the engine again")
            self.load()
            return True
        path, identity = self._watch
        if self.state not in (ModelState.FAILED, ModelState.DISABLED) or not path:
            return False
        now = file_identity(path)
        if now is None or now == identity:
            return False
        log.info("the model file changed since it failed to load: loading it again")
        self._watch = (path, now)
        self.load()
        return True

    def _model_file_changed(self) -> None:
        """The model file was replaced or rewritten (a new download, a copy over it): the
        loaded weights are mapped from it, so they are dropped unread and the file loaded
        again, here on the engine thread, before any other job runs."""
        path = self.engine.info.path if self.engine is not None else ""
        log.warning("the model file changed on disk: reloading %s", path)
        lost = self._lost_said_at
        if lost is None or time.monotonic() - lost > LOST_QUIET_S:  # (not said with a crash)
            self._notify(
                f"the model file changed on disk: reloading {os.path.basename(path)}", "info"
            )
        self.state = ModelState.LOADING
        self._load()

    # ---- jobs -------------------------------------------------------------------------

    def submit(
        self,
        engine: Engine,
        call: Callable[[CancelToken], R],
        *,
        priority: Priority,
        key: str | None = None,
        timeout_s: float | None = None,
    ) -> Job[R]:
        """Run `call` on the engine thread, bound to `engine` (the one it was built for):
        after a reload queued ahead of it that engine is closed, so the job stops before
        touching it; a model file changed on disk is reloaded first."""

        def run(token: CancelToken) -> R:
            if self.engine is not engine:
                raise Cancelled("the model was reloaded")
            if engine.model_file_changed():
                self._model_file_changed()
                raise Cancelled("the model file changed on disk")
            return call(token)

        return self.worker.submit(run, priority=priority, key=key, timeout_s=timeout_s)

    def describe(self) -> dict[str, Any]:
        """The engine's own figures for `qwenLsp/stats` (none when nothing is loaded)."""
        engine = self.engine
        return engine.describe() if engine is not None else {}

    # ---- closing ----------------------------------------------------------------------

    def _close_engine(self) -> None:
        self._on_unload()
        if self.engine is not None:
            self.engine.close()
            self.engine = None

    def close(self, timeout: float = 10.0) -> None:
        """Close the engine on its thread (after cancelling every job), then the thread."""
        self.worker.cancel_all()
        job = self.worker.submit(lambda token: self._close_engine(), priority=Priority.USER)
        try:
            job.future.result(timeout=timeout)
        except Exception:
            log.warning("the engine did not close cleanly")
        self.worker.shutdown()
