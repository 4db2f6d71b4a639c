"""A long-lived completer after any sequence of edits answers exactly as a fresh engine would.

Multi-file context on (a real workspace index), tiny qwen35 (hybrid) and qwen2 models,
greedy. Each step's suggestion is compared with a fresh engine's on the same prompt.
"""

from __future__ import annotations

import pathlib
import time

import pytest

from lsp_server.completion.postprocess import StopRule, choose_mode, finish
from lsp_server.completion.service import Completer, CompletionRequest
from lsp_server.completion.stats import Stats
from lsp_server.engine.llama import LlamaEngine
from lsp_server.engine.types import Cancelled, EngineConfig
from lsp_server.engine.worker import Priority
from lsp_server.runtime import Runtime
from lsp_server.settings import Settings

SHAPES = '''"""Shapes."""


class Shape:
    """A shape with an area."""

    def area(self) -> float:
        raise NotImplementedError


def scale(shape: Shape, factor: float) -> float:
    """The area of `shape` scaled by `factor`."""
    return shape.area() * factor
'''

MAIN_HEAD = """from shapes import Shape, scale


class Square(Shape):
    def __init__(self, side: float) -> None:
        self.side = side

    def area(self) -> float:
        return self.side ** 2


def report(square: Square) -> str:
"""
TYPED = '    total = scale(square, 2.0)\n    return f"{total}"'


def make_settings() -> Settings:
    settings = Settings()
    settings.completion.max_tokens = 10
    settings.context.budget_tokens = 1500
    settings.engine.checkpoint_memory_mb = 64
    return settings


def fresh_suggestion(
    model: pathlib.Path,
    completer: Completer,
    request: CompletionRequest,
    tokens: list[int],
    schedule: list[int],
) -> str | None:
    """A fresh engine's suggestion for the same prompt, its batches split as the reused
    state's were (llama.cpp's kernels are not batch-invariant; see tests/test_engine.py)."""
    with LlamaEngine(
        EngineConfig(model_path=str(model), n_ctx=8192, n_threads=1, slots=1)
    ) as engine:
        window = completer.window(request)
        mode = choose_mode(window, completer.settings.completion.multiline)
        prompt = completer.build(request, window)
        assert completer.engine.tokenize_prompt(prompt).tokens == tokens
        generation = engine.generate(
            tokens,
            max_tokens=completer.settings.completion.max_tokens,
            stop=prompt.stop,
            splits=schedule,
            rule=StopRule(mode, window.next_nonempty_line).check,
        )
        suggestion = finish(generation.text, window, mode)
        return suggestion.text if suggestion else None


def test_any_edit_sequence_matches_a_fresh_engine(tmp_path, tiny_model):
    from lsp_server.workspace import Workspace

    ws = tmp_path / "ws"
    ws.mkdir()
    (ws / "shapes.py").write_text(SHAPES)
    (ws / "main.py").write_text(MAIN_HEAD)
    settings = make_settings()
    context = Workspace([str(ws)], lambda: settings, cache_dir="")
    context.build()
    main, shapes = str((ws / "main.py").resolve()), str((ws / "shapes.py").resolve())
    steps: list[tuple[str, str, int, int]] = []  # (path, text, line, character)

    def at_end(path: str, text: str) -> tuple[str, str, int, int]:
        lines = text.split("\n")
        return (path, text, len(lines) - 1, len(lines[-1]))

    for i in range(1, len(TYPED) + 1, 7):  # typing
        steps.append(at_end(main, MAIN_HEAD + TYPED[:i]))
    steps.append(at_end(main, MAIN_HEAD + TYPED[:20]))  # backspace
    edited_head = MAIN_HEAD.replace("self.side = side", "self.side = float(side)")
    steps.append(at_end(main, edited_head + TYPED[:22]))  # an edit above the cursor
    steps.append(
        ("shapes", SHAPES.replace("* factor", "* factor * 1.0"), 13, 10)
    )  # another file changes
    steps.append(at_end(main, edited_head + TYPED[:23]))
    steps.append(at_end(shapes, SHAPES))  # switch files
    steps.append(at_end(main, edited_head + TYPED[:23]))  # and back
    steps.append(at_end(main, edited_head + TYPED))

    with LlamaEngine(
        EngineConfig(
            model_path=str(tiny_model), n_ctx=8192, n_threads=1, slots=2, checkpoint_bytes=64 << 20
        )
    ) as engine:
        completer = Completer(engine, settings, context=context.provider(), stats=Stats())
        seen: dict[tuple[str, str, int, int], str | None] = {}
        for path, text, line, character in steps:
            if path == "shapes":  # an edit in another file: the stable context changes
                (ws / "shapes.py").write_text(text)
                context.files_changed([(shapes, False)])
                continue
            context.update_document(path, text)
            request = CompletionRequest(
                path=path,
                text=text,
                line=line,
                character=character,
                display_path=pathlib.Path(path).name,
                repo_name="ws",
            )
            result = completer.complete(request)
            got = result.suggestion.text if result.suggestion else None
            if result.outcome == "cache":  # from an earlier, checked step (or typed through it)
                assert seen.get((path, text, line, character), got) == got
                continue
            assert result.prompt_tokens is not None and result.schedule is not None
            want = fresh_suggestion(
                tiny_model, completer, request, result.prompt_tokens, result.schedule
            )
            assert got == want, (path, line, character)
            seen[(path, text, line, character)] = got
        assert any("scale" in block for block in _context_texts(completer, steps[-1]))
        if engine.hybrid:
            assert engine.checkpoints.hits > 0


def _context_texts(completer: Completer, step: tuple[str, str, int, int]) -> list[str]:
    path, text, line, character = step
    request = CompletionRequest(path=path, text=text, line=line, character=character)
    return [s.text for s in completer.build(request).segments if s.name.startswith("context-")]


def test_warmup_yields_to_a_user_request(qwen35_model, tmp_path):
    settings = make_settings()
    settings.model.path = str(qwen35_model)
    settings.model.context_size = 65536
    settings.model.threads = 1
    settings.completion.prefix_lines = 5000
    # The file's snapshot (half the budget) is what the warm-up evaluates: ≈24K tokens.
    settings.context.budget_tokens = 48000
    runtime = Runtime(settings, Stats())
    try:
        runtime.load_model().result(timeout=30)
        assert runtime.ready
        # A big file: warming it up takes seconds on these CPUs.
        body = "".join(f"def f{i}(x):\n    return x * {i}\n\n" for i in range(2000))
        big = str(tmp_path / "big.py")
        warm = runtime.host.worker.submit(
            lambda token: runtime.completer.warm(
                runtime.completion_request(big, body, 6000, 0), token
            ),
            priority=Priority.WARMUP,
            key="warm:big",
        )
        time.sleep(0.3)  # the warm-up is running
        small = runtime.completion_request(str(tmp_path / "a.py"), "def g():\n    ", 1, 4)
        start = time.monotonic()
        job = runtime.submit_completion("a", small)
        job.future.result(timeout=30)
        waited = time.monotonic() - start
        with pytest.raises(Cancelled):
            warm.future.result(timeout=30)
        assert warm.token.reason == "preempted"
        assert waited < 1.5, f"the user request waited {waited:.2f} s behind the warm-up"
    finally:
        runtime.close()


@pytest.mark.parametrize("n_ctx", [16384, 4096])
def test_typing_in_a_minified_line_evaluates_only_the_tail(tmp_path, tiny_model, n_ctx):
    """A long line has no line ends to checkpoint at: checkpoints every few hundred
    tokens inside it keep a keystroke from evaluating the whole line again, and the
    suggestions still equal a fresh engine's. Also when the window must be cut further
    to fit a small context: the cut does not move with each keystroke."""
    import json

    line = "const data = " + json.dumps([{"id": i, "name": f"item {i}"} for i in range(300)])
    settings = make_settings()
    settings.context.enabled = False
    with LlamaEngine(
        EngineConfig(
            model_path=str(tiny_model), n_ctx=n_ctx, n_threads=1, checkpoint_bytes=64 << 20
        )
    ) as engine:
        completer = Completer(engine, settings, stats=Stats())
        line_tokens = engine.count_tokens(line)
        evaluated = []
        for typed in ("", ";", "; c", "; con", "; cons"):
            text = line + typed
            request = CompletionRequest(path="/w/data.js", text=text, line=0, character=len(text))
            result = completer.complete(request)
            if result.outcome == "cache":
                continue
            assert result.prompt_tokens is not None and result.schedule is not None
            got = result.suggestion.text if result.suggestion else None
            want = fresh_suggestion(
                tiny_model, completer, request, result.prompt_tokens, result.schedule
            )
            assert got == want
            evaluated.append((result.figures.prompt_tokens, result.figures.evaluated_tokens))
    # The line is long in tokens (the live window holds only its end: LIVE_WINDOW_TOKENS).
    assert line_tokens > 1500
    if engine.hybrid:
        later = [e for _, e in evaluated[1:]]
        assert later and max(later) <= engine.config.checkpoint_interval + 64, evaluated
