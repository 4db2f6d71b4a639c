"""The model host over the tiny real models: a model that appears after the editor
started is picked up, a failed load is tried again only once the file changes, a job
bound to an engine that was reloaded stops before touching it, and a new kind of engine
plugs in through the factory."""

from __future__ import annotations

import pathlib
import shutil
from concurrent.futures import CancelledError

import pytest

from lsp_server.engine.host import (
    EngineUnavailable,
    ModelHost,
    ModelState,
    NewEngine,
    create_engine,
)
from lsp_server.engine.types import Cancelled, Engine
from lsp_server.engine.worker import Priority
from lsp_server.settings import Settings


def _host(settings: Settings, said: list[tuple[str, str]], **kw: object) -> ModelHost:
    loaded: list[Engine] = []
    return ModelHost(
        lambda: settings,
        lambda message, level: said.append((level, message)),
        on_load=lambda engine: loaded.append(engine) or "fim",
        on_unload=loaded.clear,
        **kw,  # type: ignore[arg-type]
    )


def _settings(path: pathlib.Path) -> Settings:
    settings = Settings()
    settings.model.path = str(path)
    settings.model.threads = 1
    settings.model.context_size = 2048
    return settings


def test_a_model_file_that_appears_later_is_loaded(
    qwen2_model: pathlib.Path, tmp_path: pathlib.Path
) -> None:
    path = tmp_path / "model.gguf"
    said: list[tuple[str, str]] = []
    host = _host(_settings(path), said)
    try:
        host.load().result(30)
        assert host.state is ModelState.DISABLED and not host.ready
        assert said == [("warning", host.message)] and "no such file" in host.message
        assert not host.retry()  # still missing: nothing started
        shutil.copy(qwen2_model, path)
        assert host.retry()
        host.worker.submit(lambda token: None).future.result(30)
        assert host.state is ModelState.READY and host.ready
        assert host.message == "model.gguf ready (qwen2, fim prompts, CPU)"
        assert host.state.value == "ready"  # what qwenLsp/stats reports
    finally:
        host.close()
    assert host.engine is None


def test_a_broken_model_file_is_tried_again_only_once_it_changed(
    qwen2_model: pathlib.Path, tmp_path: pathlib.Path
) -> None:
    path = tmp_path / "model.gguf"
    path.write_bytes(qwen2_model.read_bytes()[:4096])  # a download cut short
    said: list[tuple[str, str]] = []
    host = _host(_settings(path), said)
    try:
        host.load().result(30)
        # (found unusable before llama.cpp sees it: no model, as for a missing file)
        assert host.state is ModelState.DISABLED and "cannot be used" in host.message
        assert not host.retry()  # the same bytes: not loaded again
        shutil.copy(qwen2_model, path)
        assert host.retry()
        host.worker.submit(lambda token: None).future.result(30)
        assert host.ready
    finally:
        host.close()


def test_a_job_for_a_reloaded_engine_stops_before_touching_it(
    qwen2_model: pathlib.Path,
) -> None:
    host = _host(_settings(qwen2_model), [])
    try:
        host.load().result(30)
        old = host.engine
        assert old is not None
        touched: list[Engine] = []
        reload = host.load()  # queued ahead of the job, as when the settings change
        job = host.submit(old, lambda token: touched.append(old), priority=Priority.USER)
        reload.result(30)
        with pytest.raises((Cancelled, CancelledError)):
            job.future.result(30)
        assert not touched and host.engine is not old and host.ready
    finally:
        host.close()


def test_another_kind_of_engine_plugs_in_through_the_factory(
    qwen2_model: pathlib.Path,
) -> None:
    """The factory decides which engine is made and how it fails; the host does the rest
    (a failure tried again by time, said once)."""
    settings = _settings(qwen2_model)
    calls: list[str] = []

    def create(current: Settings) -> NewEngine:
        calls.append(current.model.path)
        if len(calls) < 3:
            raise EngineUnavailable("the shared engine is not running", retry=True)
        return create_engine(current)

    said: list[tuple[str, str]] = []
    host = _host(settings, said, create=create)
    import lsp_server.engine.host as host_module

    retry_s, host_module.RETRY_S = host_module.RETRY_S, 0.0
    try:
        host.load().result(30)
        assert host.state is ModelState.FAILED
        assert host.retry()
        host.worker.submit(lambda token: None).future.result(30)
        assert host.state is ModelState.FAILED and len(said) == 1  # said once
        assert host.retry()
        host.worker.submit(lambda token: None).future.result(30)
        assert host.ready and len(calls) == 3
    finally:
        host_module.RETRY_S = retry_s
        host.close()


def test_an_engine_that_cannot_be_put_to_use_is_closed_and_said(
    qwen2_model: pathlib.Path,
) -> None:
    said: list[tuple[str, str]] = []

    def on_load(engine: Engine) -> str:
        raise ValueError("no chat template")

    host = ModelHost(
        lambda: _settings(qwen2_model),
        lambda message, level: said.append((level, message)),
        on_load=on_load,
        on_unload=lambda: None,
    )
    try:
        host.load().result(30)
        assert host.state is ModelState.FAILED and host.engine is None
        assert said == [
            ("error", "completions are off: the model could not be used (no chat template)")
        ]
    finally:
        host.close()


def test_nothing_loads_until_the_model_is_needed_and_then_once(qwen2_model: pathlib.Path) -> None:
    """The model loads at the first `need` (a completion, a code file opened), not when
    the host is made nor on a settings change before it; later needs reuse the load."""
    made: list[Settings] = []

    def create(settings: Settings) -> NewEngine:
        made.append(settings)
        return create_engine(settings)

    said: list[tuple[str, str]] = []
    host = _host(_settings(qwen2_model), said, create=create)
    try:
        assert host.state is ModelState.IDLE and host.loading is None
        assert host.message == "not loaded yet (loads at the first completion)"
        assert host.reload() is None  # new load settings before it was needed: nothing
        first = host.need()
        assert first is not None and host.state is ModelState.LOADING
        assert host.need() is None  # loading: the same load is waited for
        assert host.loading in (first, None)
        first.result(60)
        assert host.ready and host.need() is None and host.loading is None
        assert len(made) == 1 and not said
        reload = host.reload()  # needed before: new settings load it again
        assert reload is not None
        reload.result(60)
        assert len(made) == 2 and host.ready
    finally:
        host.close()
