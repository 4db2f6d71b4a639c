"""Jump-proof prompts: a jump, a first request and an edit elsewhere cost the cursor window.

The invariant (docs/context.md, "What stays in the prompt"): between two refreshes, every
prompt of a document starts with the same stable part (kept context, the file's snapshot,
appended blocks in the order they came), so the engine restores the checkpoint at its end
and evaluates only what follows. Tiny hybrid qwen35 model, a real workspace index, greedy:
each suggestion is also compared with a fresh engine's on the same prompt.
"""

from __future__ import annotations

import pathlib
import threading
import time
from types import SimpleNamespace
from typing import cast

import pytest

from context.sticky import APPEND_CAP, StickyContext
from context.types import PackedContext, Snippet
from lsp_server.completion.service import (
    LIVE_WINDOW_TOKENS,
    WINDOW_RESERVE,
    Completer,
    CompletionRequest,
    CompletionResult,
)
from lsp_server.completion.stats import Stats
from lsp_server.engine.client import ClientInfo, EngineClient
from lsp_server.engine.llama import LlamaEngine
from lsp_server.engine.types import Cancelled, EngineConfig, Prompt
from lsp_server.engine.worker import EngineWorker, Priority
from lsp_server.settings import Settings
from lsp_server.workspace import Workspace
from tests.test_typing_equivalence import fresh_suggestion

HELPERS = '''"""Helpers."""


def clamp(value: float, low: float, high: float) -> float:
    """`value` within [low, high]."""
    return max(low, min(high, value))


class Meter:
    """Counts what it is fed."""

    def __init__(self) -> None:
        self.total = 0.0

    def feed(self, amount: float) -> float:
        self.total += clamp(amount, 0.0, 100.0)
        return self.total
'''


def big_module(n: int = 60) -> str:
    head = "import os\nfrom helpers import Meter, clamp\n\n\n"
    body = "".join(
        f"def step_{i}(meter: Meter, x: float) -> float:\n"
        f'    """Step {i}."""\n'
        f"    y = clamp(x * {i}, 0.0, 10.0)\n"
        f"    return meter.feed(y + {i})\n\n\n"
        for i in range(n)
    )
    return head + body


def settings() -> Settings:
    s = Settings()
    s.completion.max_tokens = 8
    s.completion.prefix_lines = 16
    s.completion.suffix_lines = 6
    s.context.budget_tokens = 6000
    s.engine.checkpoint_memory_mb = 64
    return s


@pytest.fixture
def workspace(tmp_path: pathlib.Path):
    (tmp_path / "helpers.py").write_text(HELPERS)
    text = big_module()
    (tmp_path / "main.py").write_text(text)
    s = settings()
    ctx = Workspace([str(tmp_path)], lambda: s, cache_dir="")
    ctx.build()
    main = str((tmp_path / "main.py").resolve())
    ctx.update_document(main, text)
    yield ctx, s, main, text
    ctx.close()


def request(path: str, text: str, line: int, character: int = -1) -> CompletionRequest:
    lines = text.split("\n")
    col = len(lines[line]) if character < 0 else character
    return CompletionRequest(path, text, line, col, display_path="main.py", repo_name="ws")


def stable_tokens(engine: LlamaEngine, prompt: Prompt) -> int:
    """Tokens of the prompt's stable part: everything before the cursor window."""
    names = [s.name for s in prompt.segments]
    cut = names.index("suffix") if prompt.format == "chat" else names.index("fim-prefix-head")
    return len(engine.tokenize_prompt(Prompt(prompt.format, prompt.segments[:cut])).tokens)


def check(
    model: pathlib.Path, completer: Completer, req: CompletionRequest, result: CompletionResult
) -> None:
    """The suggestion is a fresh engine's for the same prompt, token for token."""
    assert result.prompt_tokens is not None and result.schedule is not None
    want = fresh_suggestion(model, completer, req, result.prompt_tokens, result.schedule)
    assert (result.suggestion.text if result.suggestion else None) == want


def make_completer(model: pathlib.Path, ctx: Workspace, s: Settings):
    engine = LlamaEngine(
        EngineConfig(str(model), n_ctx=16384, n_threads=1, slots=2, checkpoint_bytes=64 << 20)
    )
    return engine, Completer(engine, s, context=ctx.provider(), stats=Stats())


def appended_count(prompt: Prompt) -> int:
    return sum(1 for seg in prompt.segments if seg.name.startswith("appended-"))


def test_a_jump_reuses_the_whole_stable_part(qwen35_model, workspace):
    ctx, s, main, text = workspace
    engine, completer = make_completer(qwen35_model, ctx, s)
    with engine:
        kept_before: list[str] | None = None
        appended_before = 0
        for line in (40, 300, 150, 45, 330, 41):
            req = request(main, text, line)
            prompt = completer.build(req)
            stable = stable_tokens(engine, prompt)
            result = completer.complete(req)
            assert result.outcome != "cache"
            check(qwen35_model, completer, req, result)
            kept = [
                seg.text for seg in prompt.segments if seg.name.startswith(("context-", "snapshot"))
            ]
            if kept_before is not None:
                # The kept blocks and the snapshot are the first prompt's, as they were.
                assert kept == kept_before
                if appended_count(prompt) == appended_before:
                    assert result.figures.reused_tokens >= stable, (line, result.figures)
                else:  # this request appended a block: all before it was reused
                    assert result.figures.evaluated_tokens <= (
                        result.figures.prompt_tokens - stable + APPEND_CAP + 64
                    ), (line, result.figures)
            kept_before = kept
            appended_before = appended_count(prompt)
        assert any(seg.name == "snapshot" for seg in prompt.segments)


def test_an_edit_elsewhere_then_typing_back_costs_the_window(qwen35_model, workspace):
    """An import added at the top and a rename 200 lines up leave the stable part as it was
    (the snapshot is refreshed only while idle): typing back at the cursor evaluates the
    cursor window, and the live window shows the code as it is now."""
    ctx, s, main, text = workspace
    engine, completer = make_completer(qwen35_model, ctx, s)
    with engine:
        line = 330
        first = completer.complete(request(main, text, line))
        assert first.figures.evaluated_tokens > 0
        edited = "import sys\n" + text.replace("def step_10(", "def step_ten(")
        ctx.update_document(main, edited)
        req = request(main, edited, line + 1)  # (the same place, one line down)
        prompt = completer.build(req)
        result = completer.complete(req)
        check(qwen35_model, completer, req, result)
        stable = stable_tokens(engine, prompt)
        assert result.figures.reused_tokens >= stable
        assert result.figures.evaluated_tokens <= result.figures.prompt_tokens - stable
        lines = edited.split("\n")
        lines[line + 1] += " * 2 +"
        typed = "\n".join(lines)
        req2 = request(main, typed, line + 1)
        again = completer.complete(req2)
        if again.outcome != "cache":  # (typed through the suggestion shown: no engine work)
            assert again.figures.evaluated_tokens < 40, again.figures
            check(qwen35_model, completer, req2, again)
        # A refresh (idle time) takes the new text into the snapshot; then a jump is cheap.
        completer.warm(req2)
        snap = next(seg.text for seg in completer.build(req2).segments if seg.name == "snapshot")
        assert "10.0) * 2 +" in snap  # (the lines around the cursor, as they are now)
        jump = request(main, typed, 100)
        prompt = completer.build(jump)
        after = completer.complete(jump)
        if not appended_count(prompt):
            assert after.figures.reused_tokens >= stable_tokens(engine, prompt)
        check(qwen35_model, completer, jump, after)


def test_the_first_request_in_a_warmed_file_costs_the_window(qwen35_model, workspace):
    """Opening a file warms its prompt at the top (the server does it on didOpen); the first
    request anywhere in it then reuses the stable part."""
    ctx, s, main, text = workspace
    engine, completer = make_completer(qwen35_model, ctx, s)
    with engine:
        warm = completer.warm(request(main, text, 0, 0))
        assert warm.evaluated_tokens > 1000
        req = request(main, text, 250)
        prompt = completer.build(req)
        result = completer.complete(req)
        check(qwen35_model, completer, req, result)
        appended = sum(
            engine.count_tokens(seg.text)
            for seg in prompt.segments
            if seg.name.startswith("appended")
        )
        tail = result.figures.prompt_tokens - stable_tokens(engine, prompt)
        assert result.figures.evaluated_tokens <= tail + appended + 8, result.figures


def test_a_refresh_never_delays_a_request(qwen35_model, workspace):
    """A request that arrives while the snapshot is refreshed is answered first, and
    cheaply: the refresh works beside the state the request uses. Once a refresh is done,
    requests use its stable part."""
    ctx, s, main, text = workspace
    s.context.budget_tokens = 12000
    engine, completer = make_completer(qwen35_model, ctx, s)
    worker: EngineWorker[None] = EngineWorker()
    try:
        line = 200
        completer.complete(request(main, text, line))
        edited = "\n".join(f"# note {i}" for i in range(40)) + "\n" + text
        ctx.update_document(main, edited)
        started = threading.Event()

        def refresh(token):
            started.set()
            return completer.warm(request(main, edited, line + 40), token)

        job = worker.submit(refresh, priority=Priority.WARMUP, key="warm:main")
        assert started.wait(10)
        time.sleep(0.05)
        req = request(main, edited, line + 45)
        user = worker.submit(lambda token: completer.complete(req, token), key="main")
        result = user.future.result(timeout=60)
        assert result.outcome != "cache"
        with pytest.raises(Cancelled):
            job.future.result(timeout=60)
        assert job.token.reason == "preempted"
        # Answered from the kept stable part (the old snapshot), not after the refresh.
        prompt = completer.build(req)
        assert "# note 0" not in next(seg.text for seg in prompt.segments if seg.name == "snapshot")
        if not appended_count(prompt):
            assert result.figures.reused_tokens >= stable_tokens(engine, prompt)
        assert result.figures.evaluated_tokens < 1500, result.figures
        check(qwen35_model, completer, req, result)
        # Left alone, the refresh completes; the next request uses it and reuses its work.
        done = worker.submit(refresh, priority=Priority.WARMUP, key="warm:main")
        done.future.result(timeout=120)
        prompt = completer.build(req)
        assert "# note 0" in next(seg.text for seg in prompt.segments if seg.name == "snapshot")
        after = completer.complete(request(main, edited, line + 41))
        assert after.outcome != "cache"
        assert after.figures.reused_tokens >= stable_tokens(engine, prompt)
    finally:
        worker.shutdown()
        engine.close()


def test_a_jump_is_cheap_through_the_engine_process(qwen35_model, workspace):
    """The server's default: llama.cpp in the engine process (`engine/service.py`), reached
    over its socket. The refresh (a warm job there, forked into the second sequence) and
    the jumps after it reuse the whole stable part as in-process, and each suggestion is a
    fresh in-process engine's for the same prompt."""
    ctx, s, main, text = workspace
    config = EngineConfig(
        str(qwen35_model), n_ctx=16384, n_threads=1, slots=2, checkpoint_bytes=64 << 20
    )
    client = EngineClient.attach(config, shared=False, client=ClientInfo("test_jump"))
    local = LlamaEngine(EngineConfig(str(qwen35_model), n_ctx=16384, n_threads=1, slots=1))
    try:
        completer = Completer(client, s, context=ctx.provider(), stats=Stats())
        # fresh_suggestion asks the completer's engine for the prompt's tokens: the local one.
        as_local = cast(
            Completer,
            SimpleNamespace(
                window=completer.window,
                build=completer.build,
                settings=completer.settings,
                engine=local,
            ),
        )
        warm = completer.warm(request(main, text, 0, 0))  # (the server does it on didOpen)
        assert warm.evaluated_tokens > 1000
        for line in (250, 40, 300, 45):
            req = request(main, text, line)
            prompt = completer.build(req)
            result = completer.complete(req)
            assert result.outcome != "cache"
            tokens = local.tokenize_prompt(prompt).tokens
            stable = stable_tokens(local, prompt)
            if not appended_count(prompt):
                assert result.figures.reused_tokens >= stable, (line, result.figures)
            assert result.figures.evaluated_tokens <= len(tokens) - stable + APPEND_CAP + 64, (
                line,
                result.figures,
            )
            assert result.schedule is not None
            want = fresh_suggestion(qwen35_model, as_local, req, tokens, result.schedule)
            assert (result.suggestion.text if result.suggestion else None) == want
        assert client.describe()["engineProcess"]["connected"]
    finally:
        local.close()
        client.close()


def dense_module(n: int = 120) -> str:
    """Long, dense lines (typed signatures, tables): 160 lines of them are several times
    `LIVE_WINDOW_TOKENS`."""
    head = "import os\nfrom helpers import Meter, clamp\n\n\n"
    body = "".join(
        f"def step_{i}(meter: Meter, x: float, y: float = {i}.0, z: float = {i}.5) -> float:\n"
        f"    return meter.feed(clamp(x * {i} + y * {i + 1} - z * {i + 2}, 0.0, 10.0) + y)\n\n"
        for i in range(n)
    )
    return head + body


def test_a_jump_in_dense_code_evaluates_a_bounded_window(qwen35_model, tmp_path):
    """With the default 120 lines before the cursor and 40 after, a window of dense code
    was thousands of tokens, all evaluated at each jump (2,800 real tokens on zod's
    compile.ts in bench/editing_replay.py). The live window is capped in tokens; the
    snapshot shows the rest. Typing in place after the cut stays cheap (the cut moves in
    steps, not with each keystroke)."""
    (tmp_path / "helpers.py").write_text(HELPERS)
    text = dense_module()
    (tmp_path / "main.py").write_text(text)
    s = settings()
    s.completion.prefix_lines, s.completion.suffix_lines = 120, 40
    ctx = Workspace([str(tmp_path)], lambda: s, cache_dir="")
    ctx.build()
    main = str((tmp_path / "main.py").resolve())
    ctx.update_document(main, text)
    engine, completer = make_completer(qwen35_model, ctx, s)
    try:
        completer.warm(request(main, text, 0, 0))
        bound = LIVE_WINDOW_TOKENS + APPEND_CAP + WINDOW_RESERVE
        for line in (250, 70, 330):
            req = request(main, text, line)
            window = completer.window(req)
            assert engine.count_tokens(window.prefix + window.suffix) <= LIVE_WINDOW_TOKENS
            result = completer.complete(req)
            assert result.outcome != "cache"
            assert result.figures.evaluated_tokens <= bound, (line, result.figures)
            check(qwen35_model, completer, req, result)
        lines = text.split("\n")
        for typed in " + 1.5 * y":
            lines[330] += typed
            typing = "\n".join(lines)
            ctx.update_document(main, typing)
            req = request(main, typing, 330)
            result = completer.complete(req)
            if result.outcome != "cache":
                assert result.figures.evaluated_tokens < 64, result.figures
        if result.outcome != "cache":
            check(qwen35_model, completer, req, result)
    finally:
        engine.close()
        ctx.close()


def test_what_an_append_leaves_out_waits_for_the_refresh():
    """A request appends at most APPEND_CAP tokens; the snippets that did not fit are not
    appended by the next keystrokes (each append re-evaluates the window after it: the
    replay's typing cost 2,100-2,860 tokens a keystroke while a large class's members came
    768 tokens at a time). A snippet that is new, such as a definition typed into use,
    still is."""

    def snip(i: int) -> Snippet:
        text = f"def f{i}(x):\n    return x\n" * 3
        return Snippet(
            "/w/big.py", i * 10, i * 10 + 8, text, "definition", source="definition", tokens=300
        )

    def packed(snips: list[Snippet]) -> PackedContext:
        return PackedContext(
            tuple(snips), sum(s.tokens for s in snips), "".join(s.text for s in snips)
        )

    def pack_more(snips: list[Snippet], room: int) -> PackedContext:
        chosen: list[Snippet] = []
        for s in snips:
            if sum(c.tokens for c in chosen) + s.tokens > room:
                break
            chosen.append(s)
        return packed(chosen)

    sticky = StickyContext()
    sticky.request("/w/main.py", "key", packed([]), 16000, pack_more)
    found = [snip(i) for i in range(6)]  # 1,800 tokens: more than one append takes
    kept = sticky.request("/w/main.py", "key", packed(found), 16000, pack_more)
    assert sticky.appends == 1 and 0 < kept.tokens <= APPEND_CAP
    for _ in range(3):  # the next keystrokes find the same snippets
        sticky.request("/w/main.py", "key", packed(found), 16000, pack_more)
    assert sticky.appends == 1
    kept = sticky.request("/w/main.py", "key", packed([*found, snip(9)]), 16000, pack_more)
    assert sticky.appends == 2 and any(s.start_line == 90 for s in kept.snippets)


def test_a_file_of_one_long_line_shows_more_than_the_window(qwen35_model, tmp_path):
    """A minified bundle or a JSON dump is one line of megabytes: the snapshot, made of
    whole lines, had none that fit, so the model saw only the capped window (about 1,000
    tokens) where the budget allows many more. The snapshot is then the characters around
    the cursor that fit; typing in the line stays cheap (the snapshot is stable)."""
    items = ", ".join(f'"key_{i}": {{"id": {i}, "name": "item number {i}"}}' for i in range(4000))
    text = "{" + items + "}"
    (tmp_path / "dump.json").write_text(text)
    s = settings()
    ctx = Workspace([str(tmp_path)], lambda: s, cache_dir="")
    ctx.build()
    path = str((tmp_path / "dump.json").resolve())
    engine, completer = make_completer(qwen35_model, ctx, s)
    try:
        cursor = text.index('"key_3000"')
        typed = text[:cursor]
        req = CompletionRequest(path, typed, 0, len(typed), display_path="dump.json")
        window = completer.window(req)
        prompt = completer.build(req)
        snapshot = next(seg.text for seg in prompt.segments if seg.name == "snapshot")
        far = text[cursor - len(window.prefix) - 2000 : cursor - len(window.prefix) - 1900]
        assert far not in window.prefix and far in snapshot
        assert engine.count_tokens(prompt.text) > 2 * LIVE_WINDOW_TOKENS
        result = completer.complete(req)
        for ch in '"key_3':
            typed += ch
            req = CompletionRequest(path, typed, 0, len(typed), display_path="dump.json")
            result = completer.complete(req)
            if result.outcome != "cache":
                assert result.figures.evaluated_tokens < 300, result.figures
    finally:
        engine.close()
        ctx.close()
