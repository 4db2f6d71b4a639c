"""Shared fixtures: tiny real GGUF models (built once per session) and engines over them."""

from __future__ import annotations

import pathlib
from collections.abc import Iterator

import pytest

from lsp_server.testing.tiny_gguf import cached_model

MODEL_KINDS = ("qwen2", "qwen35")


@pytest.fixture(scope="session")
def models_dir(tmp_path_factory: pytest.TempPathFactory) -> pathlib.Path:
    return tmp_path_factory.mktemp("models")


@pytest.fixture(scope="session")
def qwen2_model(models_dir: pathlib.Path) -> pathlib.Path:
    return cached_model("qwen2", models_dir)


@pytest.fixture(scope="session")
def qwen35_model(models_dir: pathlib.Path) -> pathlib.Path:
    return cached_model("qwen35", models_dir)


@pytest.fixture(scope="session", params=MODEL_KINDS)
def tiny_model(request: pytest.FixtureRequest, models_dir: pathlib.Path) -> pathlib.Path:
    """Each tiny model in turn: pure attention (qwen2) and hybrid (qwen35)."""
    return cached_model(request.param, models_dir)


@pytest.fixture
def engine_factory() -> Iterator[object]:
    """Make engines over a model path; all are closed at the end of the test."""
    from lsp_server.engine.llama import EngineConfig, LlamaEngine

    made: list[LlamaEngine] = []

    def make(path: pathlib.Path, **kw: object) -> LlamaEngine:
        kw.setdefault("n_ctx", 4096)
        kw.setdefault("n_threads", 1)
        engine = LlamaEngine(EngineConfig(model_path=str(path), **kw))  # type: ignore[arg-type]
        made.append(engine)
        return engine

    yield make
    for engine in made:
        engine.close()
