"""A file opened while the model loads is warmed once it is ready: its first request costs
the cursor window, not the whole prompt (Neovim opens the file the user named before the
server has a model; so does a lazily loaded one)."""

from __future__ import annotations

import pathlib
import time

from lsp_server.completion.stats import Stats
from lsp_server.runtime import Runtime
from lsp_server.settings import Settings
from tests.test_jump import HELPERS, big_module


def wait_idle(runtime: Runtime, timeout: float = 120) -> None:
    """Until the engine has nothing queued or running (the warm-up is done)."""
    deadline = time.monotonic() + timeout
    time.sleep(0.3)
    while time.monotonic() < deadline:
        if not runtime.host.worker.busy():
            time.sleep(0.3)  # a warm-up the documents thread is about to submit
            if not runtime.host.worker.busy():
                return
        time.sleep(0.05)
    raise AssertionError("the engine stayed busy")


def test_a_file_opened_before_the_model_is_ready_is_warmed_when_it_is(
    qwen35_model: pathlib.Path, tmp_path: pathlib.Path
) -> None:
    (tmp_path / "helpers.py").write_text(HELPERS)
    text = big_module()
    main = tmp_path / "main.py"
    main.write_text(text)
    settings = Settings()
    settings.model.path = str(qwen35_model)
    settings.model.context_size = 16384
    settings.model.threads = 1
    settings.engine.shared = False
    settings.engine.prefetch = False
    settings.completion.max_tokens = 4
    settings.completion.prefix_lines = 16
    settings.completion.suffix_lines = 6
    settings.context.budget_tokens = 6000
    runtime = Runtime(settings, Stats())
    try:
        runtime.roots = [str(tmp_path)]
        runtime.attach_workspace(cache_dir="")
        runtime.build_index(None, None)
        path = str(main.resolve())
        # The editor opens the file: that starts the model's load (nothing loads it
        # before), and the warm-up it asks for waits for the load.
        runtime.document_opened(path, text, "python")
        loading = runtime.host.loading
        assert loading is not None and not runtime.ready
        runtime.documents.submit(runtime.document_changed, path, text, True).result(30)
        loading.result(timeout=60)
        assert runtime.ready
        wait_idle(runtime)
        lines = text.split("\n")
        request = runtime.completion_request(path, text, 250, len(lines[250]))
        result = runtime.submit_completion("a", request).future.result(timeout=60)
        figures = result.figures
        assert figures.prompt_tokens > 3000, figures
        # The stable part (context and the file's snapshot) was evaluated by the warm-up:
        # only the cursor window remains.
        assert figures.evaluated_tokens < figures.prompt_tokens / 4, figures
    finally:
        runtime.close()
