"""Speculative prefetch and the suggestion cache, through the runtime the server uses."""

from __future__ import annotations

import time

from lsp_server.completion.stats import Stats
from lsp_server.runtime import Runtime
from lsp_server.settings import Settings

SOURCE = "def add(a, b):\n    return a + b\n\n\ndef mul(a, b):\n    return "


def make_runtime(model) -> Runtime:
    settings = Settings()
    settings.model.path = str(model)
    settings.model.context_size = 4096
    settings.model.threads = 1
    settings.completion.max_tokens = 8
    settings.completion.multiline = "never"
    runtime = Runtime(settings, Stats())
    runtime.load_model().result(timeout=30)
    assert runtime.ready
    return runtime


def complete(runtime: Runtime, text: str) -> object:
    lines = text.split("\n")
    request = runtime.completion_request("/tmp/prefetch/a.py", text, len(lines) - 1, len(lines[-1]))
    result = runtime.submit_completion("a", request).future.result(timeout=30)
    runtime.after_completion("a", request, result)
    return result


def wait_idle(runtime: Runtime) -> None:
    deadline = time.monotonic() + 30
    while runtime.worker.busy() and time.monotonic() < deadline:
        time.sleep(0.01)


def test_accepting_a_suggestion_shows_the_prefetched_next_one_at_once(qwen2_model):
    runtime = make_runtime(qwen2_model)
    try:
        first = complete(runtime, SOURCE)
        assert first.suggestion is not None
        wait_idle(runtime)  # the prefetch ran while the user looked at the suggestion
        accepted = SOURCE + first.suggestion.text
        second = complete(runtime, accepted)
        assert second.outcome == "cache"
        assert second.figures.evaluated_tokens == 0
        # The same as computing it now, from scratch.
        runtime.completer._suggestions.clear()
        runtime.completer._last.clear()
        again = complete(runtime, accepted)
        assert again.outcome != "cache"
        assert (again.suggestion.text if again.suggestion else None) == (
            second.suggestion.text if second.suggestion else None
        )
    finally:
        runtime.close()


def test_undo_and_retype_are_answered_from_the_cache(qwen2_model):
    runtime = make_runtime(qwen2_model)
    runtime.settings.engine.prefetch = False
    try:
        before = complete(runtime, SOURCE)
        complete(runtime, SOURCE + "a *")
        undone = complete(runtime, SOURCE)  # undo: the text is as it was
        assert undone.outcome == "cache"
        assert undone.suggestion == before.suggestion
        stats = runtime.stats_snapshot()
        assert stats["cacheHits"] == 1
    finally:
        runtime.close()


def test_typing_the_start_of_a_suggestion_keeps_the_rest(qwen2_model):
    runtime = make_runtime(qwen2_model)
    runtime.settings.engine.prefetch = False
    try:
        shown = complete(runtime, SOURCE).suggestion
        assert shown is not None and len(shown.text) > 1
        typed = complete(runtime, SOURCE + shown.text[0])
        assert typed.outcome == "cache"
        assert typed.suggestion is not None and typed.suggestion.text == shown.text[1:]
    finally:
        runtime.close()
