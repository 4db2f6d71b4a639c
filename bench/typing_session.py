"""A scripted typing session: what a keystroke costs with checkpoints, against Llama.create_completion.

On Django's source (fetched from PyPI), with the multi-file context on, on the tiny hybrid
`qwen35` model on Qwen3.6's real vocabulary (`bench/_models.py`; `--model qwen35` for the
byte-level test vocabulary of older figures): type 300 characters of real code line by line with a completion request
after each keystroke, a few backspaces, one edit 30 lines above the cursor, one switch to
another file and back. Per request: prompt tokens and tokens evaluated (mean, p95, max),
checkpoint hits and misses, suggestion-cache hits. The baseline runs the same prompts
through llama-cpp-python's `Llama.create_completion` in the same run (a sample of them at
large budgets, where each one is a full prefill), and the wall-time ratio is printed.

    python bench/typing_session.py [--budgets 16384 65536] [--baseline-every 10] [--model qwen35]
"""

from __future__ import annotations

import argparse
import dataclasses
import pathlib
import statistics
import sys
import tempfile
import time
from typing import Any

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent))

import _sources  # noqa: E402
import llama_cpp  # noqa: E402
from _models import CHECKPOINTS_KEPT, bench_model, checkpoint_size  # noqa: E402

from lsp_server.completion.service import Completer, CompletionRequest  # noqa: E402
from lsp_server.engine.llama import LlamaEngine  # noqa: E402
from lsp_server.engine.types import EngineConfig
from lsp_server.settings import Settings  # noqa: E402
from lsp_server.testing.tiny_gguf import cached_model  # noqa: E402
from lsp_server.workspace import Workspace  # noqa: E402

FILE = "django/db/models/expressions.py"
OTHER = "django/db/models/query_utils.py"
MAX_TOKENS = 16


@dataclasses.dataclass
class Step:
    kind: str  # type | backspace | edit-above | switch | back
    path: str
    text: str
    line: int
    character: int


def find_typing_target(lines: list[str], chars: int) -> int:
    """The first line of a run of lines inside a function body, `chars` long, to retype."""
    for start in range(len(lines) // 2, len(lines)):
        run = 0
        for ln in range(start, len(lines)):
            if not lines[ln].startswith("        ") or not lines[ln].strip():
                break
            run += len(lines[ln]) + 1
            if run >= chars:
                return start
    raise SystemExit("no suitable place to type in the file")


def script(root: pathlib.Path, chars: int = 300) -> list[Step]:
    """The keystrokes: the document's text and cursor after each one."""
    path = str((root / FILE).resolve())
    other = str((root / OTHER).resolve())
    lines = (root / FILE).read_text().split("\n")
    start = find_typing_target(lines, chars)
    typed = ""
    ln = start
    while len(typed) < chars:
        typed += lines[ln] + "\n"
        ln += 1
    typed = typed[:chars]
    before = "\n".join(lines[:start]) + "\n"
    after = "\n".join(lines[ln:])
    steps: list[Step] = []

    def at(kind: str, prefix: str, head: str = before) -> Step:
        text = head + prefix + "\n" + after
        row = (head + prefix).count("\n")
        col = len((head + prefix).split("\n")[-1])
        return Step(kind, path, text, row, col)

    backspace_at = {chars // 4, chars // 2, 3 * chars // 4}
    edit_at, switch_at = chars // 3, 2 * chars // 3
    head = before
    steps.append(at("open", "", head))
    for i in range(1, len(typed) + 1):
        steps.append(at("type", typed[:i], head))
        if i in backspace_at:
            steps.append(at("backspace", typed[: i - 1], head))
            steps.append(at("backspace", typed[: i - 2], head))
            steps.append(at("type", typed[: i - 1], head))
            steps.append(at("type", typed[:i], head))
        if i == edit_at:
            # One edit 30 lines above the cursor: a comment line inserted there.
            head_lines = head.split("\n")
            cut = len(head_lines) - 30
            head = "\n".join(
                head_lines[:cut] + ["        # note: checked above"] + head_lines[cut:]
            )
            steps.append(at("edit-above", typed[:i], head))
        if i == switch_at:
            other_lines = (root / OTHER).read_text().split("\n")
            row = len(other_lines) // 2
            steps.append(Step("switch", other, "\n".join(other_lines), row, len(other_lines[row])))
            steps.append(at("back", typed[:i], head))
    return steps


def pct(values: list[float], q: float) -> float:
    values = sorted(values)
    return values[min(len(values) - 1, int(q * (len(values) - 1) + 0.5))]


class DecodeCounter:
    """Counts the tokens llama.cpp evaluates (for the baseline, which reports nothing)."""

    def __init__(self) -> None:
        self.tokens = 0
        self._real = llama_cpp.llama_decode

    def __call__(self, ctx: Any, batch: Any) -> int:
        self.tokens += batch.n_tokens
        return int(self._real(ctx, batch))


def run_budget(
    root: pathlib.Path, model: pathlib.Path, budget: int, baseline_every: int, cache_dir: str
) -> dict[str, Any]:
    settings = Settings()
    settings.context.budget_tokens = budget
    settings.completion.max_tokens = MAX_TOKENS
    n_ctx = 2 * (budget + 6144)
    workspace = Workspace([str(root)], lambda: settings, cache_dir=cache_dir)
    t0 = time.perf_counter()
    summary = workspace.build()
    index_s = time.perf_counter() - t0
    # One thread: two wait on each other at every barrier on a shared two-core machine.
    engine = LlamaEngine(
        EngineConfig(
            model_path=str(model),
            n_ctx=n_ctx,
            n_threads=1,
            slots=2,
            n_batch=512,
            checkpoint_bytes=CHECKPOINTS_KEPT * checkpoint_size(model),
        )
    )
    completer = Completer(engine, settings, context=workspace.provider())
    steps = script(root)
    rows = []
    prompts: list[list[int]] = []
    started = time.perf_counter()
    for step in steps:
        workspace.update_document(step.path, step.text)
        workspace.note_view(step.path, step.line)
        request = CompletionRequest(
            path=step.path,
            text=step.text,
            line=step.line,
            character=step.character,
            display_path=str(pathlib.Path(step.path).relative_to(root)),
            repo_name="django",
        )
        warm = 0
        if step.kind in ("open", "switch"):
            # The server warms a file up when it is opened, while the user reads it.
            warm = completer.warm(request).evaluated_tokens
        t = time.perf_counter()
        result = completer.complete(request)
        ms = (time.perf_counter() - t) * 1000
        prompt = result.prompt_tokens or engine.tokenize_prompt(completer.build(request)).tokens
        prompts.append(prompt)
        f = result.figures
        rows.append(
            {
                "kind": step.kind,
                "prompt": len(prompt),
                "evaluated": f.evaluated_tokens,
                "hits": f.checkpoint_hits,
                "misses": f.checkpoint_misses,
                "cache": result.outcome == "cache",
                "ms": ms,
                "warm": warm,
            }
        )
    ours_s = time.perf_counter() - started
    repacks, appends = workspace.repacks, workspace.appends
    engine.close()
    workspace.close()

    # Baseline: the same prompts through Llama.create_completion, greedy, same length.
    counter = DecodeCounter()
    llama_cpp.llama_decode = counter  # type: ignore[assignment]
    import llama_cpp.llama as high  # noqa: E402

    high.llama_cpp.llama_decode = counter  # type: ignore[attr-defined]
    llm = llama_cpp.Llama(str(model), n_ctx=n_ctx // 2, n_threads=1, n_batch=512, verbose=False)
    base_rows = []
    for index in range(0, len(prompts), baseline_every):
        counter.tokens = 0
        t = time.perf_counter()
        llm.create_completion(prompts[index], max_tokens=MAX_TOKENS, temperature=0.0)
        base_rows.append(
            {"evaluated": counter.tokens, "ms": (time.perf_counter() - t) * 1000, "index": index}
        )
    llm.close()
    llama_cpp.llama_decode = counter._real  # type: ignore[assignment]
    high.llama_cpp.llama_decode = counter._real  # type: ignore[attr-defined]
    return {
        "budget": budget,
        "rows": rows,
        "base": base_rows,
        "index": summary,
        "index_s": index_s,
        "ours_s": ours_s,
        "repacks": repacks,
        "appends": appends,
    }


def report(result: dict[str, Any]) -> None:
    rows, base = result["rows"], result["base"]
    ev = [r["evaluated"] for r in rows]
    pr = [r["prompt"] for r in rows]
    ms = [r["ms"] for r in rows]
    # The baseline's evaluated tokens include what it generated; ours count prompt tokens only.
    b_ev = [max(0, r["evaluated"] - MAX_TOKENS) for r in base]
    b_ms = [r["ms"] for r in base]
    same_ms = [rows[r["index"]]["ms"] for r in base]
    print(
        f"\n== context budget {result['budget']} tokens ({len(rows)} requests; index: {result['index']}) =="
    )
    print(
        f"prompt tokens        mean {statistics.mean(pr):8.0f}  p95 {pct(pr, 0.95):8.0f}  max {max(pr):8.0f}"
    )
    print(
        f"evaluated per request mean {statistics.mean(ev):7.1f}  p95 {pct(ev, 0.95):8.0f}  max {max(ev):8.0f}"
    )
    typing = [r["evaluated"] for r in rows if r["kind"] == "type"]
    print(
        f"  typing keystrokes only: mean {statistics.mean(typing):.1f}, p95 {pct(typing, 0.95):.0f}"
    )
    warm = [r["warm"] for r in rows if r["warm"]]
    print(f"warm-up on open (idle time, not in the figures above): {warm} tokens")
    for kind in ("open", "backspace", "edit-above", "switch", "back"):
        sel = [r["evaluated"] for r in rows if r["kind"] == kind]
        if sel:
            print(f"  {kind:11}: {sel}")
    worst = sorted(range(len(rows)), key=lambda i: -rows[i]["evaluated"])[:5]
    print(
        "  largest: " + ", ".join(f"#{i} {rows[i]['kind']} {rows[i]['evaluated']}" for i in worst)
    )
    print(
        f"context kept across keystrokes: {result['repacks']} repacks, {result['appends']} appended blocks"
    )
    print(
        f"checkpoint hits {sum(r['hits'] for r in rows)}, misses {sum(r['misses'] for r in rows)}, "
        f"suggestion-cache hits {sum(r['cache'] for r in rows)}"
    )
    print(
        f"baseline (Llama.create_completion, {len(base)} of the same prompts): evaluated mean "
        f"{statistics.mean(b_ev):.0f}, p95 {pct(b_ev, 0.95):.0f}"
    )
    print(
        f"tokens evaluated, baseline / ours: {statistics.mean(b_ev) / max(1e-9, statistics.mean(ev)):.0f}x"
    )
    print(
        f"wall ms per request: ours mean {statistics.mean(ms):.1f} p50 {pct(ms, 0.5):.1f} p95 {pct(ms, 0.95):.1f}; "
        f"baseline mean {statistics.mean(b_ms):.1f} (ours on the same requests {statistics.mean(same_ms):.1f}); "
        f"ratio {statistics.mean(b_ms) / statistics.mean(same_ms):.1f}x"
    )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--budgets", type=int, nargs="+", default=[16384, 65536])
    parser.add_argument("--baseline-every", type=int, default=10)
    parser.add_argument(
        "--model",
        choices=["real", "qwen35"],
        default="real",
        help="real: Qwen3.6's vocabulary (real tokens); qwen35: the byte-level test model",
    )
    args = parser.parse_args()
    root = _sources.django()
    model = (
        bench_model()
        if args.model == "real"
        else cached_model("qwen35", pathlib.Path(tempfile.gettempdir()) / "qwen-lsp-bench-models")
    )
    cache_dir = str(pathlib.Path(__file__).resolve().parent / ".cache" / "index")
    for budget in args.budgets:
        report(run_budget(root, model, budget, args.baseline_every, cache_dir))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
