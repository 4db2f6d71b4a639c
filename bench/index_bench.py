"""Benchmark of the workspace index on real source trees.

    python bench/index_bench.py [--rounds 3] [--edits 200] [--json]

Fetches (once, into bench/.cache/, which git ignores) Django 5.1's source distribution
from PyPI (bench/_sources.py) and the `effect` 4.1.0 TypeScript package from npm (its `src/` holds ~570 `.ts`
files), then reports per tree:

- cold index time (empty cache dir, all cores) and files/s, next to `ctags -R` on the
  same tree and `ctags -L` on exactly the files the index parses (ratios);
- index size on disk; peak RSS of this process and of the parse workers;
- warm restart (a new index over the same cache dir) against cold;
- re-indexing one edited open document through `update_document`: p50/p95 ms over
  200 keystrokes typing new statements into a ~2,000-line file (wall and thread CPU).

Timings are the best of `--rounds` runs, ctags and the index alternating, so that a
busy machine penalises both alike. Nothing is downloaded at test time: only this
script fetches.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import resource
import shutil
import statistics
import subprocess
import sys
import tarfile
import tempfile
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
CACHE = REPO / "bench" / ".cache"
sys.path.insert(0, str(REPO))

EFFECT = "4.1.0"


def fetch_django() -> Path:
    """Django's sdist from PyPI, extracted (shared with the other benchmarks)."""
    sys.path.insert(0, str(REPO / "bench"))
    from _sources import django

    return Path(django())


def fetch_effect() -> Path:
    """The `effect` package from npm (TypeScript sources under src/), extracted."""
    target = CACHE / f"effect-{EFFECT}"
    if target.is_dir():
        return target
    CACHE.mkdir(parents=True, exist_ok=True)
    archive = CACHE / f"effect-{EFFECT}.tgz"
    if not archive.exists():
        subprocess.run(
            ["npm", "pack", "--silent", f"effect@{EFFECT}"],
            cwd=CACHE,
            check=True,
            stdout=subprocess.DEVNULL,
        )
    target.mkdir()
    with tarfile.open(archive) as tar:
        tar.extractall(target, filter="data")
    return target


def best(values: list[float]) -> float:
    return min(values)


def cpu_seconds() -> float:
    """CPU time of this process and of its reaped children (parse workers, ctags)."""
    me = resource.getrusage(resource.RUSAGE_SELF)
    kids = resource.getrusage(resource.RUSAGE_CHILDREN)
    return me.ru_utime + me.ru_stime + kids.ru_utime + kids.ru_stime


def time_ctags(args: list[str], cwd: Path) -> tuple[float, float]:
    """(wall, CPU) seconds of one ctags run."""
    out = tempfile.mktemp(suffix=".tags")
    cpu = cpu_seconds()
    start = time.perf_counter()
    subprocess.run(
        ["ctags", "-f", out, *args],
        cwd=cwd,
        check=True,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    elapsed = time.perf_counter() - start
    cpu = cpu_seconds() - cpu
    os.remove(out)
    return elapsed, cpu


def cold_index(root: Path, cache_dir: str) -> tuple[float, float, Any, int, list[str]]:
    """(wall, CPU incl. workers, stats, bytes on disk, files) of a build from nothing."""
    from context.index import WorkspaceIndex

    shutil.rmtree(cache_dir, ignore_errors=True)
    cpu = cpu_seconds()
    start = time.perf_counter()
    index = WorkspaceIndex([str(root)], cache_dir=cache_dir)
    stats = index.build()
    elapsed = time.perf_counter() - start
    cpu = cpu_seconds() - cpu
    files = index.files()
    index.close()
    size = sum(os.path.getsize(os.path.join(cache_dir, f)) for f in os.listdir(cache_dir))
    return elapsed, cpu, stats, size, files


def warm_index(root: Path, cache_dir: str) -> tuple[float, Any]:
    from context.index import WorkspaceIndex

    start = time.perf_counter()
    index = WorkspaceIndex([str(root)], cache_dir=cache_dir)
    stats = index.build()
    elapsed = time.perf_counter() - start
    index.close()
    return elapsed, stats


def pick_file(files: list[str], suffix: str, lines: int = 2000) -> str:
    """The file of that kind whose line count is nearest to ``lines``."""
    best_path, best_gap = "", 1 << 30
    for path in files:
        if not path.endswith(suffix):
            continue
        with open(path, "rb") as f:
            count = f.read().count(b"\n")
        if abs(count - lines) < best_gap:
            best_path, best_gap = path, abs(count - lines)
    return best_path


_CLOSERS = {"(": ")", "[": "]", "{": "}", '"': '"', "'": "'"}


def typing_states(text: str, is_python: bool, edits: int, rng: random.Random) -> list[str]:
    """The successive texts of someone typing new statements, one keystroke per state.

    Each statement is typed on a new line above a random non-blank line, with that
    line's indentation, brackets and quotes closed as soon as they open (as editors do),
    with an occasional backspace.
    """
    states: list[str] = []
    k = 0
    while len(states) < edits:
        lines = text.split("\n")
        candidates = [i for i, line in enumerate(lines) if line.strip()]
        n = rng.choice(candidates)
        indent = lines[n][: len(lines[n]) - len(lines[n].lstrip())]
        statement = (
            f"value_{k} = compute_{k}(alpha, [beta, 'x'])"
            if is_python
            else f"const value_{k} = compute_{k}(alpha, [beta, 'x']);"
        )
        k += 1
        typed = ""
        pending = ""  # closers inserted ahead of the cursor
        for ch in statement:
            if len(states) >= edits:
                break
            if pending and ch == pending[0]:
                pending = pending[1:]  # typing over an auto-inserted closer
            elif ch in _CLOSERS:
                pending = _CLOSERS[ch] + pending
            typed += ch
            if rng.random() < 0.05 and len(typed) > 1:
                states.append("\n".join([*lines[:n], indent + typed[:-1] + pending, *lines[n:]]))
            state = "\n".join([*lines[:n], indent + typed + pending, *lines[n:]])
            if not states or state != states[-1]:  # typing over a closer changes nothing
                states.append(state)
        text = "\n".join([*lines[:n], indent + typed + pending, *lines[n:]])
    return states[:edits]


def edit_latency(root: Path, path: str, edits: int) -> dict[str, float]:
    """update_document after each keystroke of someone typing in the file (wall and CPU)."""
    from context.index import WorkspaceIndex

    rng = random.Random(42)
    with open(path, encoding="utf-8", errors="replace") as f:
        text = f.read()
    states = typing_states(text, path.endswith(".py"), edits, rng)
    index = WorkspaceIndex([str(root)], cache_dir="")
    index.update_document(path, text)  # the first parse is a full one, not measured
    times = []
    cpu_times = []
    for state in states:
        cpu = time.thread_time()
        start = time.perf_counter()
        index.update_document(path, state)
        times.append((time.perf_counter() - start) * 1000)
        cpu_times.append((time.thread_time() - cpu) * 1000)
    index.close()
    times.sort()
    cpu_times.sort()
    return {
        "lines": states[-1].count("\n") + 1,
        "p50_ms": statistics.median(times),
        "p95_ms": times[int(len(times) * 0.95) - 1],
        "max_ms": times[-1],
        "cpu_p50_ms": statistics.median(cpu_times),
        "cpu_p95_ms": cpu_times[int(len(cpu_times) * 0.95) - 1],
    }


def bench_tree(name: str, root: Path, rounds: int, edits: int, edit_suffix: str) -> dict[str, Any]:
    cache_dir = tempfile.mkdtemp(prefix=f"qwen-lsp-bench-{name}-")
    ctags_tree: list[tuple[float, float]] = []
    ctags_list: list[tuple[float, float]] = []
    cold: list[tuple[float, float]] = []
    warm: list[float] = []
    stats = size = files = None
    list_file = Path(cache_dir + ".files")
    for _ in range(rounds):
        ctags_tree.append(time_ctags(["-R", "."], root))
        elapsed, cpu, stats, size, files = cold_index(root, cache_dir)
        cold.append((elapsed, cpu))
        if not list_file.exists():
            list_file.write_text("\n".join(files) + "\n")
        ctags_list.append(time_ctags(["-L", str(list_file)], root))
        warm_elapsed, warm_stats = warm_index(root, cache_dir)
        assert warm_stats.parsed == 0, warm_stats
        warm.append(warm_elapsed)
    assert stats is not None and files is not None
    edited = pick_file(files, edit_suffix)
    latency = edit_latency(root, edited, edits)
    shutil.rmtree(cache_dir, ignore_errors=True)
    list_file.unlink(missing_ok=True)
    cold_s, cold_cpu = min(cold)
    tree_s, tree_cpu = min(ctags_tree)
    list_s, list_cpu = min(ctags_list)
    return {
        "tree": name,
        "files": stats.files,
        "definitions": stats.definitions,
        "languages": stats.languages,
        "megabytes": round(sum(os.path.getsize(f) for f in files) / 1e6, 1),
        "cold_s": round(cold_s, 3),
        "cold_cpu_s": round(cold_cpu, 3),
        "files_per_s": round(stats.files / cold_s),
        "ctags_tree_s": round(tree_s, 3),
        "ctags_tree_cpu_s": round(tree_cpu, 3),
        "ctags_files_s": round(list_s, 3),
        "ctags_files_cpu_s": round(list_cpu, 3),
        "cold_vs_ctags_tree": round(cold_s / tree_s, 2),
        "cold_vs_ctags_files": round(cold_s / list_s, 2),
        "index_mb": round((size or 0) / 1e6, 1),
        "warm_s": round(best(warm), 3),
        "cold_over_warm": round(cold_s / best(warm), 1),
        "edit_file": os.path.relpath(edited, root),
        "edit_lines": latency["lines"],
        "edit_p50_ms": round(latency["p50_ms"], 2),
        "edit_p95_ms": round(latency["p95_ms"], 2),
        "edit_max_ms": round(latency["max_ms"], 2),
        "edit_cpu_p50_ms": round(latency["cpu_p50_ms"], 2),
        "edit_cpu_p95_ms": round(latency["cpu_p95_ms"], 2),
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=3, help="runs per timing (best is kept)")
    parser.add_argument("--edits", type=int, default=200, help="edits for the re-index latency")
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    args = parser.parse_args()
    if shutil.which("ctags") is None:
        print("ctags (universal-ctags) is needed for the comparison", file=sys.stderr)
        return 2
    trees = [("django", fetch_django(), ".py")]
    effect = fetch_effect()
    trees.append(("effect", effect, ".ts"))
    results = [
        bench_tree(name, root, args.rounds, args.edits, suffix) for name, root, suffix in trees
    ]
    self_kb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    children_kb = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    report = {
        "cpus": os.cpu_count(),
        "load_avg": [round(x, 2) for x in os.getloadavg()],
        "peak_rss_mb": round(self_kb / 1024, 1),
        "peak_rss_children_mb": round(children_kb / 1024, 1),  # largest worker (or ctags)
        "trees": results,
    }
    if args.json:
        print(json.dumps(report, indent=2))
        return 0
    print(
        f"{report['cpus']} CPUs, load average {report['load_avg']}; peak RSS "
        f"{report['peak_rss_mb']} MB (this process), {report['peak_rss_children_mb']} MB "
        "(largest child)"
    )
    header = (
        "tree",
        "files",
        "MB",
        "cold s",
        "files/s",
        "ctags -R s",
        "ctags -L s",
        "cold/ctags-R",
        "cold/ctags-L",
        "index MB",
        "warm s",
        "cold/warm",
        "edit p50 ms",
        "edit p95 ms",
    )
    print("| " + " | ".join(header) + " |")
    print("|" + "---|" * len(header))
    for r in results:
        row = (
            r["tree"],
            r["files"],
            r["megabytes"],
            r["cold_s"],
            r["files_per_s"],
            r["ctags_tree_s"],
            r["ctags_files_s"],
            r["cold_vs_ctags_tree"],
            r["cold_vs_ctags_files"],
            r["index_mb"],
            r["warm_s"],
            r["cold_over_warm"],
            r["edit_p50_ms"],
            r["edit_p95_ms"],
        )
        print("| " + " | ".join(str(v) for v in row) + " |")
    for r in results:
        print(
            f"{r['tree']}: {r['definitions']} definitions, languages {r['languages']}; "
            f"CPU seconds: index {r['cold_cpu_s']} (all processes), ctags -R "
            f"{r['ctags_tree_cpu_s']}, ctags -L {r['ctags_files_cpu_s']}; edits on "
            f"{r['edit_file']} ({r['edit_lines']} lines): max {r['edit_max_ms']} ms, CPU "
            f"p50/p95 {r['edit_cpu_p50_ms']}/{r['edit_cpu_p95_ms']} ms"
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
