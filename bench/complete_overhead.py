"""Server-side time per completion outside llama.cpp's decode calls.

On a real 2,000-line file (Django's django/db/models/expressions.py, fetched from PyPI),
runs completions at many positions through the same code path as the server
(`Completer.complete`: cursor window, prompt building, tokenization, engine, post-
processing) on a tiny model, and splits each request's wall time into the time inside
`llama_decode` and everything else. Prints p50/p95 of both, and the total, in wall time
and in the process's CPU time (the machine may be shared: waiting for a core inflates the
wall time, not the CPU time; llama.cpp runs one thread here). The default
model is the tiny `qwen35` on Qwen3.6's real vocabulary (`bench/_models.py`): prompt
lengths and tokenization cost are the real model's; `--model qwen35|qwen2` use the
byte-level test vocabulary of older figures.

    python bench/complete_overhead.py [--requests 200] [--model real|qwen2|qwen35]
"""

from __future__ import annotations

import argparse
import pathlib
import random
import statistics
import sys
import tempfile
import time

import llama_cpp

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent))

import _sources  # noqa: E402
from _models import bench_model  # noqa: E402

from lsp_server.completion.service import Completer, CompletionRequest  # noqa: E402
from lsp_server.engine import llama as engine_module  # noqa: E402
from lsp_server.engine.llama import LlamaEngine  # noqa: E402
from lsp_server.engine.types import EngineConfig
from lsp_server.settings import Settings  # noqa: E402
from lsp_server.testing.tiny_gguf import cached_model  # noqa: E402

FILE = "django/db/models/expressions.py"


class DecodeClock:
    """Wraps llama_decode to add up the time spent inside it (wall and process CPU)."""

    def __init__(self) -> None:
        self.seconds = 0.0
        self.cpu_seconds = 0.0
        self.calls = 0
        self._real = llama_cpp.llama_decode

    def __call__(self, ctx, batch):  # type: ignore[no-untyped-def]
        start, cpu = time.perf_counter(), time.process_time()
        try:
            return self._real(ctx, batch)
        finally:
            self.seconds += time.perf_counter() - start
            self.cpu_seconds += time.process_time() - cpu
            self.calls += 1


def pct(values: list[float], q: float) -> float:
    values = sorted(values)
    return values[min(len(values) - 1, int(q * len(values)))]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--requests", type=int, default=200)
    parser.add_argument("--model", choices=["real", "qwen2", "qwen35"], default="real")
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args()

    root = _sources.django()
    path = root / FILE
    text = path.read_text()
    lines = text.split("\n")
    model = (
        bench_model()
        if args.model == "real"
        else cached_model(args.model, pathlib.Path(tempfile.gettempdir()) / "qwen-lsp-bench-models")
    )
    clock = DecodeClock()
    engine_module.llama_cpp.llama_decode = clock  # type: ignore[attr-defined]

    settings = Settings()
    settings.completion.max_tokens = 16
    engine = LlamaEngine(EngineConfig(model_path=str(model), n_ctx=16384, n_threads=1))
    completer = Completer(engine, settings)
    rng = random.Random(args.seed)
    positions = [
        (ln, len(lines[ln].rstrip()))
        for ln in sorted(rng.sample(range(50, len(lines) - 1), args.requests))
    ]
    totals: list[float] = []
    outside: list[float] = []
    cpu_totals: list[float] = []
    cpu_outside: list[float] = []
    evaluated: list[int] = []
    prompts: list[int] = []
    for line, col in positions:
        request = CompletionRequest(
            path=str(path),
            text=text,
            line=line,
            character=col,
            display_path=FILE,
            repo_name="django",
        )
        clock.seconds = clock.cpu_seconds = 0.0
        start, cpu = time.perf_counter(), time.process_time()
        result = completer.complete(request)
        total = (time.perf_counter() - start) * 1000
        cpu_total = (time.process_time() - cpu) * 1000
        totals.append(total)
        outside.append(total - clock.seconds * 1000)
        cpu_totals.append(cpu_total)
        cpu_outside.append(cpu_total - clock.cpu_seconds * 1000)
        evaluated.append(result.figures.evaluated_tokens)
        prompts.append(result.figures.prompt_tokens)
    engine.close()

    print(
        f"file: {FILE} ({len(lines)} lines), model: tiny {args.model}, {len(positions)} requests at sorted random line ends"
    )
    print(
        f"tokens evaluated per request: mean {statistics.mean(evaluated):.0f} of "
        f"{statistics.mean(prompts):.0f} in the prompt (the cursor jumps: most of each prompt is new)"
    )
    print(f"{'':22}{'p50 ms':>10}{'p95 ms':>10}{'mean ms':>10}")
    for name, values in (
        ("total per request", totals),
        ("outside llama_decode", outside),
        ("CPU, total", cpu_totals),
        ("CPU, outside decode", cpu_outside),
    ):
        print(
            f"{name:22}{pct(values, 0.5):10.2f}{pct(values, 0.95):10.2f}{statistics.mean(values):10.2f}"
        )
    print(f"share outside decode: {sum(outside) / sum(totals):.1%}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
