"""Shared fixtures: tiny real GGUF models (built once per session) and engines over them."""

from __future__ import annotations

import json
import os
import pathlib
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Iterator

import pytest

from lsp_server.testing.tiny_gguf import cached_model

MODEL_KINDS = ("qwen2", "qwen35")

# The engine processes that the tests' servers start (engine.shared) live in a runtime
# folder of this session, set before any test captures the environment for its servers;
# each test's engines are stopped when it ends (`engine_processes`).
ENGINE_FOLDER = tempfile.mkdtemp(prefix="ql-")
os.environ["QWEN_LSP_RUNTIME_DIR"] = ENGINE_FOLDER


@pytest.fixture(autouse=True)
def engine_processes() -> Iterator[str]:
    """No engine outlives its test: a test starts from no engine, as a user's first
    editor does, and leaves no process behind."""
    yield ENGINE_FOLDER
    from lsp_server.engine.client import stop_engines

    stop_engines(ENGINE_FOLDER)


def pytest_sessionfinish(session: pytest.Session) -> None:
    from lsp_server.engine.client import stop_engines

    stop_engines(ENGINE_FOLDER)
    shutil.rmtree(ENGINE_FOLDER, ignore_errors=True)


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
    from lsp_server.engine.llama import LlamaEngine
    from lsp_server.engine.types import EngineConfig

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


@pytest.fixture(scope="session")
def serving_engine(
    qwen35_model: pathlib.Path, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[str]:
    """A real OpenAI-compatible serving engine on loopback (llama-cpp-python's own server,
    the `server` extra) over the hybrid tiny model; yields its API base URL (…/v1)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    log = tmp_path_factory.mktemp("serving") / "server.log"
    with open(log, "wb") as out:
        proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "llama_cpp.server",
                "--model",
                str(qwen35_model),
                "--host",
                "127.0.0.1",
                "--port",
                str(port),
                "--n_ctx",
                "4096",
                "--n_threads",
                "1",
                "--verbose",
                "false",
            ],  # fmt: skip
            stdout=out,
            stderr=subprocess.STDOUT,
            env={**os.environ, "PYTHONUNBUFFERED": "1"},
        )
    url = f"http://127.0.0.1:{port}/v1"
    deadline = time.monotonic() + 120
    try:
        while True:
            try:
                with urllib.request.urlopen(f"{url}/models", timeout=2) as answer:
                    if json.load(answer).get("data"):
                        break
            except OSError:
                pass
            if proc.poll() is not None or time.monotonic() > deadline:
                pytest.fail(f"the serving engine did not start:\n{log.read_text()[-3000:]}")
            time.sleep(0.1)
        yield url
    finally:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
