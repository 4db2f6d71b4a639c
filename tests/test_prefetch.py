"""Speculative prefetch and the suggestion cache, through the runtime the server uses."""

from __future__ import annotations

import logging
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
    while runtime.host.worker.busy() and time.monotonic() < deadline:
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


def test_accepting_lines_of_a_suggestion_keeps_the_next_ones(qwen2_model):
    """Accept-line (Neovim plugin, VS Code) inserts a line and its break: the lines after
    it stay the ones shown, even when the prefix window moves down with the new lines."""
    lines = "".join(f"v{i} = {i}\n" for i in range(8))
    # With 4 prefix lines the window's first line moves down with every new line (and the
    # prompt shows the file's snapshot: other text, for a suggestion of several lines).
    short = "".join(f"v{i} = {i}\n" for i in range(7))
    for prefix_lines, text in ((120, lines + "\nif x:\n    "), (4, short)):
        runtime = make_runtime(qwen2_model)
        runtime.settings.engine.prefetch = False
        runtime.settings.completion.multiline = "always"
        runtime.settings.completion.max_tokens = 16
        runtime.settings.completion.prefix_lines = prefix_lines
        try:
            shown = complete(runtime, text).suggestion
            assert shown is not None and shown.text.count("\n") >= 2, (
                f"the tiny model's suggestion {shown!r} has fewer than 3 lines: change the text"
            )
            first, second, rest = shown.text.split("\n", 2)
            after_one = complete(runtime, text + first + "\n")
            assert after_one.outcome == "cache"
            assert after_one.suggestion is not None
            assert after_one.suggestion.text == second + "\n" + rest
            after_two = complete(runtime, text + first + "\n" + second + "\n")
            assert after_two.outcome == "cache"
            assert after_two.suggestion is not None and after_two.suggestion.text == rest
            # Something else typed at the new line: computed again, not the old rest.
            other = complete(runtime, text + first + "\nzz")
            assert other.outcome != "cache"
        finally:
            runtime.close()


def test_the_log_tells_a_prefetch_from_a_request(qwen2_model, caplog):
    """A log reader (and bench/vscode_session.py) must not take the speculative
    suggestion after the one shown for a request the user made."""
    runtime = make_runtime(qwen2_model)
    try:
        with caplog.at_level(logging.INFO, logger="lsp_server.completion.service"):
            first = complete(runtime, SOURCE)
            assert first.suggestion is not None
            wait_idle(runtime)
        said = [r.getMessage() for r in caplog.records if r.name == "lsp_server.completion.service"]
        assert said[0].startswith("completion a.py:6:12 "), said
        assert any(m.startswith("prefetch a.py:") for m in said[1:]), said
        assert not any(m.startswith("completion") for m in said[1:]), said
    finally:
        runtime.close()
