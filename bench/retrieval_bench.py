"""Retrieval and packing on Django's source tree: latency and definition recall.

    python bench/retrieval_bench.py [--positions 200] [--seed 0] [--json OUT]

Fetches Django 5.1's source distribution with pip into bench/.cache/ (never
committed), indexes it with `context.index.WorkspaceIndex`, and measures:

- latency of `gather_context` (retrieval + packing, estimate tokenizer, every source on)
  at 16K and 64K-token budgets over `--positions` random cursor positions: p50/p95 ms;
- definition recall: `--positions` cursor positions at the end of a line whose next
  line uses a name imported (``from x import name``) from another file of the tree;
  the rest of the file after the cursor is hidden from the index (update_document with
  the truncated text). A position counts when the packed context shows the first line
  of that name's definition. At 4K and 16K tokens, next to CrossCodeEval's retriever:
  BM25 over 10-line chunks of the workspace, queried with the last 10 lines before the
  cursor, given as many characters as our packed context took at that position.

The figures and the command go into docs/benchmarks.md.
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import random
import re
import statistics
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
sys.path.insert(0, str(Path(__file__).resolve().parent))

import _sources  # noqa: E402

from context.recent import RecentActivity  # noqa: E402
from context.retrieve import IndexLike, gather_context  # noqa: E402
from context.similar import BM25Chunks, SimilarWindows  # noqa: E402
from context.tokens import estimate_tokens  # noqa: E402
from context.types import Definition, Import, PackedContext  # noqa: E402

CACHE = Path(__file__).resolve().parent / ".cache" / "retrieval"
DJANGO = ("Django", "5.1")
_WORD = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


def fetch_django() -> Path:
    """Django's sdist, downloaded with pip and unpacked under bench/.cache/ once."""
    return _sources.pypi_sdist(*DJANGO)


def percentile(values: Sequence[float], q: float) -> float:
    ordered = sorted(values)
    if not ordered:
        return float("nan")
    k = min(len(ordered) - 1, max(0, round(q * (len(ordered) - 1))))
    return ordered[k]


# -- latency ---------------------------------------------------------------------


def latency_positions(index: IndexLike, files: list[str], n: int, seed: int) -> list[Any]:
    rng = random.Random(seed)
    out: list[Any] = []
    while len(out) < n:
        path = rng.choice(files)
        text = index.text(path) or ""
        lines = text.split("\n")
        if len(lines) < 10:
            continue
        line = rng.randrange(len(lines))
        out.append((path, text, line, rng.randrange(len(lines[line]) + 1)))
    return out


def session_activity(files: list[str], seed: int) -> RecentActivity:
    """Recent activity as after a few minutes of work: edits and views in six files."""
    rng = random.Random(seed + 1)
    recent = RecentActivity()
    for path in rng.sample(files, 6):
        line = rng.randrange(200)
        if rng.random() < 0.5:
            recent.note_edit(path, line, line + rng.randrange(8))
        else:
            recent.note_view(path, line)
    return recent


def measure_latency(
    index: IndexLike,
    recent: RecentActivity,
    similar: SimilarWindows,
    positions: list[Any],
    budget: int,
) -> dict[str, float]:
    times = []
    tokens = []
    for path, text, line, character in positions:
        started = time.perf_counter()
        packed = gather_context(
            index,
            recent,
            similar,
            path=path,
            text=text,
            line=line,
            character=character,
            budget_tokens=budget,
            count_tokens=estimate_tokens,
        )
        times.append((time.perf_counter() - started) * 1000)
        tokens.append(packed.tokens)
    return {
        "budget": budget,
        "p50_ms": percentile(times, 0.5),
        "p95_ms": percentile(times, 0.95),
        "max_ms": max(times),
        "mean_tokens": statistics.mean(tokens),
    }


# -- recall ----------------------------------------------------------------------


@dataclass
class RecallCase:
    path: str
    line: int  # the cursor is at the end of this line; the next one uses `name`
    name: str
    targets: list[Definition]


def ground_truth(index: IndexLike, path: str, imp: Import, name: str) -> list[Definition]:
    """Where `name` imported by `imp` is defined, following re-exports (independent of
    the retriever's own resolution)."""
    frontier = [(p, name) for p in index.resolve_import(path, imp)]
    seen: set[tuple[str, str]] = set()
    for _ in range(5):
        found: list[Definition] = []
        following: list[tuple[str, str]] = []
        for fpath, wanted in frontier:
            if (fpath, wanted) in seen or fpath == path:
                continue
            seen.add((fpath, wanted))
            fs = index.file(fpath)
            if fs is None:
                continue
            hits = [d for d in fs.definitions if d.name == wanted and not d.parent]
            if hits:
                found.extend(hits)
                continue
            for other in fs.imports:
                local = other.local_names if len(other.local_names) == len(other.names) else ()
                for i, original in enumerate(other.names):
                    bound = local[i] if local else original
                    if bound == wanted and original != "*":
                        following.extend((p, original) for p in index.resolve_import(fpath, other))
        if found:
            return found
        if not following:
            return []
        frontier = following
    return []


def recall_cases(index: IndexLike, files: list[str], n: int, seed: int) -> list[RecallCase]:
    rng = random.Random(seed + 2)
    order = list(files)
    rng.shuffle(order)
    cases: list[RecallCase] = []
    for path in order:
        if len(cases) >= n:
            break
        fs = index.file(path)
        text = index.text(path)
        if fs is None or text is None or fs.language != "python":
            continue
        bound: dict[str, tuple[Import, str]] = {}
        for imp in fs.imports:
            local = imp.local_names if len(imp.local_names) == len(imp.names) else ()
            for i, original in enumerate(imp.names):
                if original != "*":
                    bound[local[i] if local else original] = (imp, original)
        if not bound:
            continue
        lines = text.split("\n")
        import_lines = _statement_lines(lines, {imp.line for imp in fs.imports})
        first_code = max(import_lines) + 1
        uses: list[tuple[int, str]] = []
        for number in range(max(1, first_code), len(lines)):
            if number in import_lines:
                continue
            stripped = lines[number].strip()
            if not stripped or stripped.startswith("#"):
                continue
            for word in dict.fromkeys(_WORD.findall(lines[number])):
                if word in bound:
                    uses.append((number, word))
        rng.shuffle(uses)
        for number, word in uses:
            imp, original = bound[word]
            targets = ground_truth(index, path, imp, original)
            if targets:
                cases.append(RecallCase(path, number - 1, word, targets))
                break
    return cases


def _statement_lines(lines: list[str], starts: set[int]) -> set[int]:
    """The lines of the statements starting at `starts`, continuation lines included
    (a name on the second line of `from x import (\n a,\n b)` is not a use of it)."""
    out: set[int] = set()
    for start in starts:
        depth = 0
        i = start
        while i < len(lines):
            out.add(i)
            code = lines[i].split("#", 1)[0]
            depth += code.count("(") - code.count(")")
            if depth <= 0 and not code.rstrip().endswith("\\"):
                break
            i += 1
    return out


def shows(snippets: Sequence[Any], target: Definition) -> bool:
    return any(
        s.path == target.path and s.start_line <= target.start_line <= s.end_line for s in snippets
    )


def measure_recall(
    index: Any,
    similar: SimilarWindows,
    bm25: BM25Chunks,
    cases: list[RecallCase],
    budgets: Sequence[int],
) -> list[dict[str, float]]:
    results = []
    for budget in budgets:
        ours = base = errors = 0
        chars_total = 0
        for case in cases:
            full = index.text(case.path) or ""
            lines = full.split("\n")
            visible = "\n".join(lines[: case.line + 1])
            try:
                index.update_document(case.path, visible)
                packed = gather_context(
                    index,
                    None,
                    similar,
                    path=case.path,
                    text=visible,
                    line=case.line,
                    character=len(lines[case.line]),
                    budget_tokens=budget,
                    count_tokens=estimate_tokens,
                )
            except Exception as exc:  # an index failure counts against us, and is reported
                print(f"error at {case.path}:{case.line + 1}: {exc!r}", file=sys.stderr)
                errors += 1
                packed = PackedContext(snippets=(), tokens=0)
            finally:
                index.close_document(case.path)
            ours += any(shows(packed.snippets, t) for t in case.targets)
            chars = len(packed.text)
            chars_total += chars
            query = "\n".join(lines[max(0, case.line - 9) : case.line + 1])
            chosen = []
            used = 0
            for hit in bm25.query(query, k=400, exclude_path=case.path):
                size = _chunk_chars(index, hit)
                if used + size > chars:
                    break
                used += size
                chosen.append(hit)
            base += any(shows(chosen, t) for t in case.targets)
        n = max(1, len(cases))
        results.append(
            {
                "budget": budget,
                "cases": len(cases),
                "recall": ours / n,
                "bm25_recall": base / n,
                "mean_chars": chars_total / n,
                "errors": errors,
            }
        )
    return results


_LINES: dict[str, list[str]] = {}


def _chunk_chars(index: Any, hit: Any) -> int:
    lines = _LINES.get(hit.path)
    if lines is None:
        lines = _LINES[hit.path] = (index.text(hit.path) or "").split("\n")
    # As a file block: a path header line and the chunk's lines.
    return len(hit.path) + 1 + sum(len(x) + 1 for x in lines[hit.start_line : hit.end_line + 1])


# -- main ------------------------------------------------------------------------


def run(index: Any, root: Path, positions: int, seed: int) -> dict[str, Any]:
    files = sorted(p for p in index.files() if p.endswith(".py"))
    started = time.perf_counter()
    similar = SimilarWindows()
    similar.update_many(files, index.text)
    similar_s = time.perf_counter() - started
    bm25 = BM25Chunks()
    bm25.update_many(files, index.text)
    print(f"similarity windows: {len(similar)} in {similar_s:.1f} s", file=sys.stderr)

    recent = session_activity(files, seed)
    spots = latency_positions(index, files, positions, seed)
    gc.collect()
    measure_latency(index, recent, similar, spots[:20], 16384)  # warm caches and imports
    latency = [measure_latency(index, recent, similar, spots, b) for b in (16384, 65536)]
    for row in latency:
        print(f"latency {row}", file=sys.stderr)

    cases = recall_cases(index, files, positions, seed)
    recall = measure_recall(index, similar, bm25, cases, (4096, 16384))
    for row in recall:
        print(f"recall {row}", file=sys.stderr)
    return {
        "tree": str(root),
        "files": len(files),
        "similar_windows": len(similar),
        "similar_build_s": similar_s,
        "latency": latency,
        "recall": recall,
    }


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--positions", type=int, default=200)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--json", metavar="OUT", help="also write the figures as JSON")
    args = parser.parse_args(argv)

    from context.index import WorkspaceIndex

    root = fetch_django()
    started = time.perf_counter()
    index = WorkspaceIndex([str(root)], cache_dir=str(CACHE / "index"))
    index.build()
    print(f"index: {time.perf_counter() - started:.1f} s", file=sys.stderr)
    figures = run(index, root, args.positions, args.seed)
    figures["cpus"] = os.cpu_count()
    text = json.dumps(figures, indent=2)
    print(text)
    if args.json:
        Path(args.json).write_text(text + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
