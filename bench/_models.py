"""The small benchmark model: the tiny ``qwen35`` on Qwen3.6's real vocabulary, cheap on a CPU.

Benchmarks count tokens (evaluated, reused, prompt lengths): those depend on the vocabulary
and the engine, not on the model's width, so the benchmarks use `cached_model("qwen35-real")`'s
vocabulary, pre-tokenizer and chat template on fewer, narrower layers.
"""

from __future__ import annotations

import pathlib
import sys
import tempfile
from typing import Any

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[1]))

from lsp_server.engine.llama import LlamaEngine  # noqa: E402
from lsp_server.engine.types import EngineConfig  # noqa: E402
from lsp_server.testing.tiny_gguf import (  # noqa: E402
    QWEN36_CHAT_TEMPLATE,
    build_qwen35,
    qwen36_vocab,
)

MODELS = pathlib.Path(tempfile.gettempdir()) / "qwen-lsp-bench-models"
# The tiny qwen35 of `cached_model("qwen35-real")` (Qwen3.6's vocabulary, pre-tokenizer and
# chat template, the same layer kinds), made smaller: 4 layers (3 Gated DeltaNet, 1 gated
# attention), 32 wide, f32, output tied to the embeddings. What is counted (tokens
# evaluated, reused, prompt lengths) depends on the vocabulary and the engine, not on the
# width: this model only makes each token ~10x cheaper on the CPU.
BENCH_DIMS: dict[str, Any] = {
    "n_layer": 4,
    "n_embd": 32,
    "n_ff": 64,
    "weight_type": "f32",
    "tie_embeddings": True,
}
# Qwen3.6-27B keeps this many checkpoints in the default engine.checkpointMemoryMb (2048 MB
# at ~157 MB each, docs/engine.md): the tiny model gets room for as many, not thousands.
CHECKPOINTS_KEPT = 13


def bench_model() -> pathlib.Path:
    """The small real-vocabulary model (`BENCH_DIMS`), built once into `MODELS`."""
    target = MODELS / "tiny-qwen35-real-bench-v1.gguf"
    if not target.exists():
        MODELS.mkdir(parents=True, exist_ok=True)
        tmp = target.with_suffix(".tmp")
        build_qwen35(
            tmp,
            name="tiny-qwen3.6-real-vocab",
            vocab=qwen36_vocab(MODELS),
            chat_template=QWEN36_CHAT_TEMPLATE,
            **BENCH_DIMS,
        )
        tmp.replace(target)
    return target


def checkpoint_size(model: pathlib.Path) -> int:
    """Bytes of one checkpoint (the recurrent state) of `model`."""
    engine = LlamaEngine(EngineConfig(model_path=str(model), n_ctx=1024, n_threads=1, slots=1))
    try:
        engine.prepare(engine.tokenize("def f(x):\n    return x\n"), save_end=True)
        return max(1, engine.checkpoints.bytes_used // max(1, len(engine.checkpoints)))
    finally:
        engine.close()
