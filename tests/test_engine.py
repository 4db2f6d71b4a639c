"""The engine on real tiny models: prefix reuse and checkpoints give exactly a fresh run's output."""

from __future__ import annotations

import pathlib
import subprocess
import sys

import numpy as np
import pytest

from lsp_server.engine.checkpoints import CheckpointCache
from lsp_server.engine.types import Cancelled, CancelToken, ModelLoadError

CODE = (
    "import os\n\n\n"
    "def read_config(path):\n"
    '    """Read a config file."""\n'
    "    with open(path) as fh:\n"
    "        return fh.read()\n\n\n"
    "def main():\n"
    "    cfg = read_"
)


def line_ends(engine, tokens):
    return [i + 1 for i, t in enumerate(tokens) if b"\n" in engine.piece(t)]


def fresh(engine_factory, model, tokens, schedule=()):
    """A fresh engine's answer for `tokens`, its batches split where the reused state's were.

    llama.cpp's kernels are not batch-invariant: evaluating the same tokens in other
    batches moves the logits by ~1e-3, enough to flip a near-tie of a random model. So
    "the same as fresh" means: the same prompt, the same batch boundaries, fresh state.
    """
    engine = engine_factory(model)
    return engine.generate(tokens, max_tokens=12, splits=schedule)


def assert_state_matches_one_batch(engine_factory, model, engine, tokens):
    """And the reused state is the prompt's state: logits as a one-batch evaluation's."""
    engine.prepare(tokens)
    reference = engine_factory(model)
    reference.prepare(tokens)
    np.testing.assert_allclose(engine.logits(), reference.logits(), atol=0.05)


def test_generation_is_deterministic_and_varied(engine_factory, tiny_model):
    a = engine_factory(tiny_model)
    b = engine_factory(tiny_model)
    tokens = a.tokenize(CODE)
    ga, gb = a.generate(tokens, max_tokens=16), b.generate(tokens, max_tokens=16)
    assert ga.tokens == gb.tokens
    assert ga.figures.evaluated_tokens == len(tokens)


def test_edit_sequence_matches_fresh_engine(engine_factory, tiny_model):
    """Typing, backspace, an edit above the cursor, then back: each answer as a fresh engine's."""
    engine = engine_factory(tiny_model)
    texts = [CODE]
    texts += [CODE + "config"[:i] for i in range(1, 7)]  # typing
    texts += [CODE + "conf", CODE + "co"]  # backspace
    texts.append(CODE.replace("Read a config", "Load a config") + "co")  # edit above
    texts.append(CODE + "config(")  # and back
    for text in texts:
        tokens = engine.tokenize(text)
        got = engine.generate(tokens, checkpoints=line_ends(engine, tokens), max_tokens=12)
        want = fresh(engine_factory, tiny_model, tokens, got.schedule)
        assert got.tokens == want.tokens, text
        assert got.figures.prompt_tokens == len(tokens)
        assert got.figures.reused_tokens + got.figures.evaluated_tokens == len(tokens)


def test_typing_reuses_state(engine_factory, tiny_model):
    engine = engine_factory(tiny_model)
    tokens = engine.tokenize(CODE)
    engine.generate(tokens, checkpoints=line_ends(engine, tokens), max_tokens=4)
    more = engine.tokenize(CODE + "config(path)\n    ")
    got = engine.generate(more, checkpoints=line_ends(engine, more), max_tokens=4)
    # Only the tokens of the last line(s) are evaluated, not the whole prompt.
    assert got.figures.evaluated_tokens < 16 < len(more)
    if engine.hybrid:
        assert got.figures.checkpoint_hits == 1


def test_hybrid_trim_needs_a_restored_checkpoint(engine_factory, qwen35_model, qwen2_model):
    import llama_cpp

    hybrid = engine_factory(qwen35_model)
    tokens = hybrid.tokenize(CODE)
    hybrid.prepare(tokens)
    assert hybrid.hybrid
    assert not llama_cpp.llama_memory_seq_rm(hybrid._mem, 0, 10, -1)
    attention = engine_factory(qwen2_model)
    attention.prepare(attention.tokenize(CODE))
    assert not attention.hybrid
    assert llama_cpp.llama_memory_seq_rm(attention._mem, 0, 10, -1)


def test_checkpoint_never_restored_onto_another_prefix(engine_factory, qwen35_model):
    engine = engine_factory(qwen35_model, slots=1)
    tokens = engine.tokenize(CODE)
    points = line_ends(engine, tokens)
    engine.generate(tokens, checkpoints=points, max_tokens=4)
    assert len(engine.checkpoints) >= 3
    # Change the very first line: every saved checkpoint is for another prefix now.
    changed = engine.tokenize("import sys" + CODE[len("import os") :])
    got = engine.generate(changed, checkpoints=line_ends(engine, changed), max_tokens=12)
    assert got.figures.checkpoint_hits == 0 and got.figures.checkpoint_misses == 1
    assert got.figures.reused_tokens == 0
    assert got.tokens == fresh(engine_factory, qwen35_model, changed, got.schedule).tokens


def test_switching_prompts_and_back_keeps_both_warm(engine_factory, tiny_model):
    """Two files in two sequences: going back to the first costs only what changed."""
    engine = engine_factory(tiny_model, slots=2)
    a = engine.tokenize(CODE)
    b = engine.tokenize('package main\n\nfunc main() {\n\tfmt.Println("hi")\n}\n' * 3)
    engine.generate(a, checkpoints=line_ends(engine, a), max_tokens=4)
    engine.generate(b, checkpoints=line_ends(engine, b), max_tokens=4)
    again = engine.tokenize(CODE + "x")
    got = engine.generate(again, checkpoints=line_ends(engine, again), max_tokens=12)
    assert got.figures.evaluated_tokens < 16  # the last line, not the prompt
    assert got.tokens == fresh(engine_factory, tiny_model, again, got.schedule).tokens
    assert_state_matches_one_batch(engine_factory, tiny_model, engine, again)


def test_full_kv_cache_drops_the_least_recently_used_sequence(engine_factory, tiny_model):
    engine = engine_factory(tiny_model, slots=2, n_ctx=256, n_batch=64)
    a = engine.tokenize(CODE * 3)[:150]
    b = engine.tokenize("let x = 1;\n" * 40)[:150]
    engine.generate(a, max_tokens=2)
    got = engine.generate(b, max_tokens=8)  # 150 + 150 > 256 cells: `a` gives way
    assert got.tokens == fresh(engine_factory, tiny_model, b, got.schedule).tokens[:8]
    assert sum(len(s) for s in engine._seqs) <= 256


def test_checkpoint_lru_is_bounded_by_bytes():
    cache = CheckpointCache(max_bytes=1000)
    tokens = np.arange(100, dtype=np.int32)
    for n in range(1, 60):
        cache.put(tokens, n, bytearray(n * 7))
        assert cache.bytes_used <= 1000
    assert not cache.put(tokens, 99, bytearray(2000))
    assert cache.find(tokens, 59) is not None
    assert cache.find(tokens, 3) is None  # evicted long ago
    other = tokens.copy()
    other[0] = 5
    assert cache.find(other, 59) is None  # same positions, different prefix


def test_line_checkpoints_never_evict_the_anchors_while_these_hold_half():
    """13 checkpoints fit (Qwen3.6-27B's 157 MB each in the default 2 GB): the checkpoints
    at the stable blocks' ends (anchors) outlive the line checkpoints that typing saves at
    nearly every request; a jump resumes from an anchor. With one LRU, typing a few lines
    evicted every anchor and the next jump evaluated the whole prompt."""
    cache = CheckpointCache(max_bytes=13 * 100)
    tokens = np.arange(5000, dtype=np.int32)
    for n in (1000, 2000, 3000):  # the stable part's blocks
        assert cache.put(tokens, n, bytearray(100), anchor=True)
    for n in range(3001, 3200):  # typing: line checkpoints, most recently used
        assert cache.put(tokens, n, bytearray(100))
        assert cache.bytes_used <= 1300
    found = cache.find(tokens, 2999)
    assert found is not None and found.n_tokens == 2000
    assert cache.find(tokens, 3199) is not None  # the newest lines are kept too
    # Anchors beyond half the bytes give way, least recently used first.
    for n in range(10, 20):
        cache.put(tokens, n, bytearray(100), anchor=True)
    assert (
        sum(
            cache.find(tokens, n) is not None and cache.find(tokens, n).n_tokens == n
            for n in range(10, 20)
        )
        <= 6
    )
    assert cache.bytes_used <= 1300


def test_switching_back_finds_the_prompts_deepest_anchor_after_another_prompts_blocks():
    """At a 64K budget a prompt has more stable blocks than anchors fit (6 of 13 here):
    the other file's prompt saved its block ends and evicted every anchor of the first
    file's, and switching back evaluated the whole prompt (46K tokens in
    bench/typing_session.py). A prompt's shallower block ends go first, so each prompt
    keeps its deepest one."""
    cache = CheckpointCache(max_bytes=13 * 100)
    first = np.arange(50_000, dtype=np.int32)
    other = first + 1
    blocks = range(4_000, 44_001, 4_000)  # 11 stable blocks' ends
    for n in blocks:
        assert cache.put(first, n, bytearray(100), anchor=True)
    for n in range(44_100, 44_300, 20):  # typing there
        cache.put(first, n, bytearray(100))
    for n in blocks:  # the other file: warmed up, then a request
        assert cache.put(other, n, bytearray(100), anchor=True)
    cache.put(other, 45_000, bytearray(100), anchor=True, covers=False)  # its prompt's end
    for n in range(45_100, 45_300, 20):  # typing there: the first file's lines go
        cache.put(other, n, bytearray(100))
    back = cache.find(first, 44_200)
    assert back is not None and back.n_tokens == 44_000
    again = cache.find(other, 44_900)
    assert again is not None and again.n_tokens == 44_000
    assert cache.find(other, 45_050).n_tokens == 45_000  # the prompt's end, not covering
    assert cache.bytes_used <= 1300


def test_cancel_stops_between_tokens(engine_factory, tiny_model):
    engine = engine_factory(tiny_model)
    token = CancelToken()
    token.cancel("test")
    with pytest.raises(Cancelled):
        engine.generate(engine.tokenize(CODE), max_tokens=50, cancel=token)
    # The engine stays usable and correct after a cancellation.
    tokens = engine.tokenize(CODE + "x")
    got = engine.generate(tokens, max_tokens=8)
    assert got.tokens == fresh(engine_factory, tiny_model, tokens, got.schedule).tokens[:8]


def test_special_tokens_in_user_code_are_text(engine_factory, qwen35_model):
    engine = engine_factory(qwen35_model)
    as_text = engine.tokenize_with("x = '<|im_end|>'", ())
    assert engine.token_id("<|im_end|>") not in as_text
    mixed = engine.tokenize_with("<|file_sep|>a.py\n<|im_end|>", ("<|file_sep|>",))
    assert mixed[0] == engine.token_id("<|file_sep|>")
    assert engine.token_id("<|im_end|>") not in mixed


@pytest.mark.parametrize(
    "content, message",
    [
        (None, "not found"),
        (b"", "bad header"),
        (b"GGUF" + b"\x00" * 64, "could not load"),
        (b"not a model at all", "bad header"),
    ],
)
def test_bad_model_files_fail_clearly(tmp_path: pathlib.Path, engine_factory, content, message):
    path = tmp_path / "model.gguf"
    if content is not None:
        path.write_bytes(content)
    with pytest.raises(ModelLoadError, match=message):
        engine_factory(path)


def test_truncated_model_fails_clearly(tmp_path, engine_factory, qwen2_model):
    data = qwen2_model.read_bytes()
    path = tmp_path / "truncated.gguf"
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(ModelLoadError):
        engine_factory(path)


_BIG_BATCH = """
import sys
from lsp_server.engine.llama import LlamaEngine
from lsp_server.engine.types import EngineConfig
config = EngineConfig(model_path=sys.argv[1], n_ctx=32768, n_batch=32768, n_threads=1)
with LlamaEngine(config) as engine:
    prompt = engine.tokenize("def f(x):\\n    return x\\n" * 400)
    assert len(prompt) > 2048  # evaluated in several micro-batches
    print(len(engine.generate(prompt, max_tokens=4).text) >= 0)
"""


def test_a_huge_batch_setting_does_not_abort_the_process(qwen35_model):
    """llama.cpp aborts the process when a compute buffer cannot be allocated, and those
    grow faster than the micro-batch on hybrid models (32K asked for 25 GB here): the
    micro-batch is capped, so the largest allowed `batchSize` loads and runs. In a child
    process, so that a regression fails here instead of killing the test run."""
    done = subprocess.run(
        [sys.executable, "-c", _BIG_BATCH, str(qwen35_model)],
        capture_output=True,
        text=True,
        timeout=300,
        cwd=pathlib.Path(__file__).resolve().parents[1],
    )
    assert done.returncode == 0 and done.stdout.strip() == "True", done.stderr[-2000:]


def test_a_full_kv_cache_is_not_a_warning(caplog: pytest.LogCaptureFixture) -> None:
    """llama.cpp warns at each failed decode when the KV cache is full; the engine then
    evicts the least recently used sequence, as designed: that warning is debug noise
    (1,386 of them in a 2,000-completion session), other warnings stay warnings."""
    import ctypes
    import logging

    from lsp_server.engine.llama import _llama_log

    with caplog.at_level(logging.WARNING, logger="llama.cpp"):
        _llama_log(
            3, b"decode: failed to find a memory slot for batch of size 512\n", ctypes.c_void_p(0)
        )
        _llama_log(4, b"init_batch: failed to prepare attention ubatches\n", ctypes.c_void_p(0))
        _llama_log(3, b"something else went wrong\n", ctypes.c_void_p(0))
        _llama_log(4, b"an error that is one\n", ctypes.c_void_p(0))
    assert [r.getMessage() for r in caplog.records] == [
        "something else went wrong",
        "an error that is one",
    ]


def test_background_work_forks_instead_of_rolling_back(engine_factory, qwen35_model):
    """Warm-up work whose prompt departs from the sequence a request uses (a refreshed
    snapshot of the file) runs in another sequence from the newest checkpoint: the old
    prompt still costs one token, the new one too once warmed, and both answer as a fresh
    engine does."""
    engine = engine_factory(qwen35_model, slots=2)
    rng = np.random.default_rng(3)
    stable = [int(t) for t in rng.integers(30, 250, 400)]
    old = stable + [int(t) for t in rng.integers(30, 250, 200)] + [65, 66, 67]
    new = stable + [int(t) for t in rng.integers(30, 250, 150)] + [65, 66, 67]
    first = engine.generate(old, checkpoints=[len(stable), len(old) - 3], max_tokens=8)
    assert first.figures.evaluated_tokens == len(old)
    warmed = engine.prepare(new[:-3], [len(stable)], save_end=True, fork=True)
    assert warmed.reused_tokens == len(stable)  # from the checkpoint, in the other sequence
    again = engine.generate(old, max_tokens=8)
    # The old sequence was left alone: from its last checkpoint (generation moved it on).
    assert again.figures.reused_tokens == len(old) - 3
    assert again.tokens == first.tokens
    got = engine.generate(new, max_tokens=8)
    assert got.figures.reused_tokens == len(new) - 3
    assert got.tokens == fresh(engine_factory, qwen35_model, new, got.schedule).tokens[:8]


def test_background_work_never_takes_the_sequence_the_last_request_used(
    engine_factory, qwen35_model
):
    """A refresh packed for another place shares little with any sequence: it goes to the
    least recently used one, and when that is not the sequence the last request used it
    works there, in place, instead of forking into (and clearing) the live one. Found in
    Neovim: after an edit at the top of a file, typing back at the cursor re-evaluated
    15,943 of 17,479 tokens because the refresh had cleared the requests' sequence."""
    engine = engine_factory(qwen35_model, slots=2, n_batch=64)
    rng = np.random.default_rng(5)

    def tokens(n: int) -> list[int]:
        return [int(t) for t in rng.integers(30, 250, n)]

    head = tokens(8)  # the system turn: all prompts share it
    old = head + tokens(400) + [65, 66, 67]
    engine.generate(old, checkpoints=[len(old) - 3], max_tokens=4)  # a request
    # A first refresh (another packing) lands in the empty sequence; a request uses it.
    stable = head + tokens(400)
    live = stable + tokens(20) + [65, 66, 67]
    engine.prepare(stable, [len(stable)], save_end=True, fork=True)
    first = engine.generate(live, max_tokens=4)
    assert first.figures.reused_tokens == len(stable)
    # A second refresh, packed for another place, preempted half way.
    other = head + tokens(400)

    class Preempt(CancelToken):
        """A request arrives after three batches."""

        calls = 0

        def check(self) -> None:
            self.calls += 1
            if self.calls > 3:
                self.cancel("preempted")
            super().check()

    with pytest.raises(Cancelled):
        engine.prepare(other, [len(other)], Preempt(), save_end=True, fork=True)
    again = engine.generate(live, max_tokens=4)
    assert again.figures.reused_tokens >= len(stable), again.figures
    assert again.tokens == first.tokens


def test_background_work_that_does_not_fit_beside_the_live_sequence_gives_way(
    engine_factory, qwen35_model, caplog
):
    """When the KV cache cannot hold a refresh beside the prompt requests use, the refresh
    is given up (once said in the log with the setting that makes room); it never drops
    the requests' sequence, which llama.cpp's full cache used to make the engine do."""
    import logging

    engine = engine_factory(qwen35_model, slots=2, n_ctx=1024, n_batch=64)
    rng = np.random.default_rng(7)
    live = [int(t) for t in rng.integers(30, 250, 600)] + [65, 66, 67]
    first = engine.generate(live, checkpoints=[600], max_tokens=4)
    other = [int(t) for t in rng.integers(30, 250, 600)]
    with caplog.at_level(logging.INFO, logger="lsp_server.engine.llama"):
        with pytest.raises(Cancelled):
            engine.prepare(other, [len(other)], save_end=True, fork=True)
        with pytest.raises(Cancelled):
            engine.prepare(other, [len(other)], save_end=True, fork=True)
    assert sum("model.contextSize" in r.getMessage() for r in caplog.records) == 1
    again = engine.generate(live, max_tokens=4)
    assert again.figures.reused_tokens >= 600, again.figures
    assert again.tokens == first.tokens


def test_anchors_are_the_stable_blocks_ends_only(engine_factory, qwen35_model):
    """The checkpoints kept as anchors end blocks before the cursor window; the chat
    format's answer start comes after the suffix, changes with it, and is not one."""
    from lsp_server.engine.types import Prompt, Segment

    engine = engine_factory(qwen35_model)
    prompt = Prompt(
        "chat",
        (
            Segment("context-0", "def a():\n    return 1\n", checkpoint=True),
            Segment("snapshot", "x = a()\n", checkpoint=True),
            Segment("suffix", "After the cursor: y = 2\n"),
            Segment("answer-start", "```python\n", checkpoint=True),
            Segment("prefix", "z = 1\nw = ", line_checkpoints=True),
        ),
    )
    tokenized = engine.tokenize_prompt(prompt)
    ends = [
        len(engine.tokenize_prompt(Prompt("chat", prompt.segments[:k])).tokens) for k in (1, 2, 4)
    ]
    assert tokenized.anchors == ends[:2]
    assert ends[2] in tokenized.checkpoints and ends[2] not in tokenized.anchors
