"""Typing in one very long line: a minified bundle or a JSON dump, against Llama.create_completion.

Every language is completed, so a user may type in a file whose one line holds
megabytes. On real minified files from Django's source distribution (PyPI:
`jquery.min.js`, `xregexp.min.js`, `select2.full.min.js`) and on a generated 3 MB
one-line JSON array, with the tiny hybrid `qwen35` model on Qwen3.6's real vocabulary
(`bench/_models.py`, the default; `--model qwen35|qwen2` use the byte-level test
vocabulary of the older figures, ≈2 characters a token): 40 keystrokes retyping text
in the middle of the longest line, one completion request after each. Per file: the
line's length, prompt tokens, tokens evaluated per keystroke (mean, p95, max), the
time per request (wall and the process's CPU time: the machine is shared) and the part of
it outside llama.cpp (total minus prefill and generation). One llama.cpp thread by
default, as the other benchmarks on the real vocabulary (`--threads`). The baseline is the same prompts through llama-cpp-python's
`Llama.create_completion` in the same run (every 10th keystroke), which evaluates
each prompt whole.

    python bench/long_lines.py [--keystrokes 40] [--model real|qwen2|qwen35] [--threads 1]
        [--files NAME..] [--json]
"""

from __future__ import annotations

import argparse
import json
import pathlib
import statistics
import sys
import time
from typing import Any

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent))

import _sources  # noqa: E402
import llama_cpp  # noqa: E402
from _models import bench_model  # noqa: E402

from lsp_server.completion.service import Completer, CompletionRequest  # noqa: E402
from lsp_server.engine.llama import LlamaEngine  # noqa: E402
from lsp_server.engine.types import EngineConfig
from lsp_server.settings import Settings  # noqa: E402
from lsp_server.testing.tiny_gguf import cached_model  # noqa: E402

VENDOR = "django/contrib/admin/static/admin/js/vendor"
FILES = (
    f"{VENDOR}/jquery/jquery.min.js",
    f"{VENDOR}/xregexp/xregexp.min.js",
    f"{VENDOR}/select2/select2.full.min.js",
)
N_CTX = 32768
MAX_TOKENS = 16


def json_dump() -> str:
    """A 3 MB one-line JSON array (the same bytes on every machine)."""
    rows = [
        {"id": i, "name": f"item {i}", "tags": ["a", "b"], "price": round(i * 1.5, 1)}
        for i in range(40_000)
    ]
    return json.dumps(rows)


def pct(values: list[float], q: float) -> float:
    values = sorted(values)
    return values[min(len(values) - 1, int(q * (len(values) - 1) + 0.5))]


def session(text: str, keystrokes: int) -> list[tuple[str, int, int]]:
    """(text, line, character) after each keystroke: the middle of the longest line is
    deleted and retyped, one character at a time."""
    lines = text.split("\n")
    line = max(range(len(lines)), key=lambda i: len(lines[i]))
    start = len(lines[line]) // 2
    typed = lines[line][start : start + keystrokes]
    steps = []
    for n in range(1, len(typed) + 1):
        changed = lines[line][:start] + typed[:n] + lines[line][start + len(typed) :]
        steps.append(("\n".join([*lines[:line], changed, *lines[line + 1 :]]), line, start + n))
    return steps


def run_file(
    name: str, text: str, model: pathlib.Path, keystrokes: int, threads: int = 1
) -> dict[str, Any]:
    settings = Settings()
    settings.completion.max_tokens = MAX_TOKENS
    settings.context.enabled = False  # the file alone: what the long line costs
    engine = LlamaEngine(EngineConfig(model_path=str(model), n_ctx=N_CTX, n_threads=threads))
    completer = Completer(engine, settings)
    rows = []
    prompts = []
    for doc, line, character in session(text, keystrokes):
        request = CompletionRequest(path=f"/w/{name}", text=doc, line=line, character=character)
        t, cpu = time.perf_counter(), time.process_time()
        result = completer.complete(request)
        ms = (time.perf_counter() - t) * 1000
        cpu_ms = (time.process_time() - cpu) * 1000
        f = result.figures
        prompts.append(
            result.prompt_tokens or engine.tokenize_prompt(completer.build(request)).tokens
        )
        rows.append(
            {
                "prompt": len(prompts[-1]),
                "evaluated": f.evaluated_tokens,
                "ms": ms,
                "cpu_ms": cpu_ms,
                "outside_ms": ms - f.prefill_ms - f.generate_ms,
                "cache": result.outcome == "cache",
            }
        )
    engine.close()

    llm = llama_cpp.Llama(str(model), n_ctx=N_CTX, n_threads=threads, n_batch=512, verbose=False)
    base = []
    for index in range(0, len(prompts), 10):
        t, cpu = time.perf_counter(), time.process_time()
        llm.create_completion(prompts[index], max_tokens=MAX_TOKENS, temperature=0.0)
        base.append(
            {
                "evaluated": len(prompts[index]),
                "ms": (time.perf_counter() - t) * 1000,
                "cpu_ms": (time.process_time() - cpu) * 1000,
            }
        )
    llm.close()
    lines = text.split("\n")
    return {
        "file": name,
        "bytes": len(text.encode()),
        "longest_line": max(len(x) for x in lines),
        "rows": rows,
        "base": base,
    }


def summary(result: dict[str, Any]) -> dict[str, Any]:
    rows = [r for r in result["rows"] if not r["cache"]]
    evaluated = [r["evaluated"] for r in rows]
    ms = [r["ms"] for r in rows]
    base_ms = statistics.mean(b["ms"] for b in result["base"])
    base_cpu_ms = statistics.mean(b["cpu_ms"] for b in result["base"])
    cpu_ms = [r["cpu_ms"] for r in rows]
    return {
        "file": result["file"],
        "bytes": result["bytes"],
        "longest_line": result["longest_line"],
        "requests": len(result["rows"]),
        "from_cache": len(result["rows"]) - len(rows),
        "prompt_tokens": round(statistics.mean(r["prompt"] for r in result["rows"])),
        "evaluated_mean": round(statistics.mean(evaluated), 1) if rows else 0,
        "evaluated_p95": pct(evaluated, 0.95) if rows else 0,
        "evaluated_max": max(evaluated) if rows else 0,
        "evaluated_first": result["rows"][0]["evaluated"],
        "ms_p50": round(pct(ms, 0.5), 1) if rows else 0,
        "ms_p95": round(pct(ms, 0.95), 1) if rows else 0,
        "cpu_ms_p50": round(pct(cpu_ms, 0.5), 1) if rows else 0,
        "outside_ms_p50": round(pct([r["outside_ms"] for r in rows], 0.5), 1) if rows else 0,
        "baseline_evaluated": round(statistics.mean(b["evaluated"] for b in result["base"])),
        "baseline_ms": round(base_ms, 1),
        "baseline_cpu_ms": round(base_cpu_ms, 1),
        "speedup_vs_baseline": round(base_ms / pct(ms, 0.5), 1) if rows else 0,
        "cpu_speedup_vs_baseline": round(base_cpu_ms / pct(cpu_ms, 0.5), 1) if rows else 0,
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--keystrokes", type=int, default=40)
    parser.add_argument(
        "--model",
        choices=["real", "qwen2", "qwen35"],
        default="real",
        help="real: Qwen3.6's vocabulary (bench/_models.py); qwen2/qwen35: the byte-level one",
    )
    parser.add_argument(
        "--files",
        nargs="+",
        metavar="NAME",
        help="only these files (jquery.min.js, xregexp.min.js, select2.full.min.js, dump.json)",
    )
    parser.add_argument("--threads", type=int, default=1, help="llama.cpp threads")
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    args = parser.parse_args()
    root = _sources.django()
    cache = pathlib.Path(__file__).resolve().parent / ".cache"
    model = bench_model() if args.model == "real" else cached_model(args.model, cache / "models")
    texts = {pathlib.Path(f).name: (root / f).read_text(encoding="utf-8") for f in FILES}
    texts["dump.json"] = json_dump()
    if args.files:
        unknown = set(args.files) - set(texts)
        if unknown:
            parser.error(f"unknown files: {', '.join(sorted(unknown))}")
        texts = {name: text for name, text in texts.items() if name in args.files}
    print(f"model: tiny {args.model} ({model.name})", file=sys.stderr)
    results = [
        summary(run_file(n, t, model, args.keystrokes, args.threads)) for n, t in texts.items()
    ]
    if args.json:
        print(json.dumps(results, indent=2))
        return 0
    head = (
        "| file | KB | longest line | prompt tok | first eval | eval/keystroke mean | p95 "
        "| ms p50 | ms p95 | CPU ms p50 | outside llama p50 | create_completion eval | ms "
        "| CPU ms | speed-up (wall / CPU) |"
    )
    print(head)
    print("|---" * (head.count("|") - 1) + "|")
    for r in results:
        print(
            f"| {r['file']} | {r['bytes'] // 1000} | {r['longest_line']:,} | {r['prompt_tokens']:,} "
            f"| {r['evaluated_first']:,} | {r['evaluated_mean']} | {r['evaluated_p95']} "
            f"| {r['ms_p50']} | {r['ms_p95']} | {r['cpu_ms_p50']} | {r['outside_ms_p50']} "
            f"| {r['baseline_evaluated']:,} | {r['baseline_ms']} | {r['baseline_cpu_ms']} "
            f"| {r['speedup_vs_baseline']}x / {r['cpu_speedup_vs_baseline']}x |"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
