"""Soak: many edits in bursts, with completions and cancellations, against the real server
over stdio (a tiny model). Reports the server's RSS growth per 1,000 edits after a
warm-up (goal: a plateau, at most 1 MB per 1,000 edits) and the latency of requests
that do not run the model (`qwenLsp/stats`, sent between bursts: the event loop's own
delay under the load).

    python bench/soak.py [--edits 30000] [--documents 20] [--model qwen2|qwen35]
                         [--tracemalloc] [--growing]

The edits keep each document about its first size (characters and lines typed and
deleted), so that what grows is the server's and not the documents'. With --growing
they only add text, as the first version of this soak did: each edit then adds to the
text, its two syntax trees and the index's entry, and RSS grows with them.

With --tracemalloc the server traces its Python allocations from before the documents
are opened, and the report ends with the code whose memory grew most between the end of
the warm-up and the end of the run (what to look at when RSS does not plateau; tracing
slows the server down, so the RSS figures of such a run are not the benchmark's).
"""

from __future__ import annotations

import argparse
import os
import pathlib
import random
import signal
import statistics
import sys
import tempfile
import time

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[1]))

from lsp_server.testing.lsp_client import StdioServer  # noqa: E402
from lsp_server.testing.tiny_gguf import cached_model  # noqa: E402

# The server with a SIGUSR1 handler: the first signal (sent once the model is loaded,
# before the documents are opened: imports under tracing take minutes) starts tracing its
# allocations, the next ones dump a snapshot to PREFIX.1, PREFIX.2, …
TRACED_SERVER = """
import os, signal, sys, tracemalloc
prefix, taken = sys.argv.pop(1), []
def dump(*_):
    if not tracemalloc.is_tracing():
        tracemalloc.start(4)
        return
    taken.append(1)
    name = f"{prefix}.{len(taken)}"
    tracemalloc.take_snapshot().dump(name + ".tmp")
    os.replace(name + ".tmp", name)
signal.signal(signal.SIGUSR1, dump)
from lsp_server.cli import main
raise SystemExit(main(sys.argv[1:]))
"""


def print_growth(before: pathlib.Path, after: pathlib.Path, top: int = 12) -> None:
    import tracemalloc

    first, second = tracemalloc.Snapshot.load(str(before)), tracemalloc.Snapshot.load(str(after))
    ignore = [tracemalloc.Filter(False, tracemalloc.__file__)]
    first, second = first.filter_traces(ignore), second.filter_traces(ignore)
    total = sum(s.size for s in second.statistics("filename")) - sum(
        s.size for s in first.statistics("filename")
    )
    print(f"\nPython memory traced: {total / 1024:+.1f} KB between the snapshots; grew most:")
    for stat in second.compare_to(first, "traceback")[:top]:
        frames = [f"{f.filename.split('site-packages/')[-1]}:{f.lineno}" for f in stat.traceback]
        print(f"  {stat.size_diff / 1024:+8.1f} KB {stat.count_diff:+6d} blocks  {frames[-1]}")
        for frame in reversed(frames[:-1][-6:]):
            print(f"        {frame}")


def stationary_edit(
    lines: list[str], base_lines: int, base_chars: int, rng: random.Random
) -> tuple[int, int, int, int, str]:
    """One edit of a document whose size stays about where it started: a line added or
    deleted, a character typed or deleted, each more likely when it brings the document
    back towards its first size. `lines` (the client's copy) is changed; the change is
    (start line, start character, end line, end character, new text)."""
    line = rng.randrange(len(lines) - 1)  # (not the empty line after the last \n)
    if rng.random() < 0.2:
        if rng.random() < (0.7 if len(lines) <= base_lines else 0.3):
            lines.insert(line, "y = 1")
            return (line, 0, line, 0, "y = 1\n")
        del lines[line]
        return (line, 0, line + 1, 0, "")
    text = lines[line]
    chars = sum(len(t) + 1 for t in lines) - 1
    if not text or rng.random() < (0.7 if chars < base_chars else 0.3):
        column, typed = rng.randint(0, len(text)), rng.choice("xz ")
        lines[line] = text[:column] + typed + text[column:]
        return (line, column, line, column, typed)
    column = rng.randrange(len(text))
    lines[line] = text[:column] + text[column + 1 :]
    return (line, column, line, column + 1, "")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--edits", type=int, default=30_000)
    parser.add_argument("--documents", type=int, default=20)
    parser.add_argument("--burst", type=int, default=25, help="edits between completions")
    parser.add_argument("--warmup", type=int, default=5_000, help="edits before measuring")
    parser.add_argument("--model", default="qwen2", choices=["qwen2", "qwen35"])
    parser.add_argument("--tracemalloc", action="store_true", help="where Python memory grows")
    parser.add_argument(
        "--growing", action="store_true", help="the first soak's edits: text only added"
    )
    args = parser.parse_args()
    rng = random.Random(1)
    tmp = pathlib.Path(tempfile.mkdtemp(prefix="qwen-lsp-soak-"))
    model = cached_model(args.model, tmp / "models")
    ws = tmp / "ws"
    ws.mkdir()
    env = {"XDG_CACHE_HOME": str(tmp / "cache"), "XDG_DATA_HOME": str(tmp / "data")}
    snapshots = tmp / "snapshot"
    command = (sys.executable, "-c", TRACED_SERVER, str(snapshots)) if args.tracemalloc else ()
    client = StdioServer(env, command=command)
    client.initialize(
        ws,
        {
            "model": {"path": str(model), "threads": 1, "contextSize": 2048},
            "completion": {"maxTokens": 8},
            "engine": {"warmup": False, "prefetch": False},
        },
    )
    assert client.wait_model(120)["model"] == "ready"
    if args.tracemalloc:  # from before the documents are opened
        os.kill(client.proc.pid, signal.SIGUSR1)
        client.stats()
    docs = []
    for i in range(args.documents):
        uri = (ws / f"mod{i}.py").as_uri()
        text = "".join(f"def f{i}_{k}(x):\n    return x + {k}\n\n" for k in range(50))
        client.send(
            {
                "method": "textDocument/didOpen",
                "params": {
                    "textDocument": {"uri": uri, "languageId": "python", "version": 1, "text": text}
                },
            }
        )
        lines = text.split("\n")
        docs.append({"uri": uri, "version": 1, "lines": lines, "base": (len(lines), len(text))})
    samples: list[tuple[int, int]] = []  # (edits, RSS KB)
    stats_ms: list[float] = []
    cancelled = completed = 0
    started = time.monotonic()
    doc = docs[0]
    for edit in range(1, args.edits + 1):
        if edit % args.burst == 1:  # a burst of typing in one document
            doc = rng.choice(docs)
        doc["version"] += 1
        if args.growing:
            line = rng.randrange(len(doc["lines"]) - 1)
            text = rng.choice(["x", " ", "y = 1\n", "z"]) if rng.random() < 0.8 else ""
            change = (line, 0, line, 1 if not text else 0, text)
            doc["lines"].extend([""] * text.count("\n"))  # (only the count is kept)
        else:
            change = stationary_edit(doc["lines"], *doc["base"], rng)
        line = change[0]
        client.send(
            {
                "method": "textDocument/didChange",
                "params": {
                    "textDocument": {"uri": doc["uri"], "version": doc["version"]},
                    "contentChanges": [
                        {
                            "range": {
                                "start": {"line": change[0], "character": change[1]},
                                "end": {"line": change[2], "character": change[3]},
                            },
                            "text": change[4],
                        }
                    ],
                },
            }
        )
        if edit % args.burst == 0:
            ident, answer = client.send_request(
                "textDocument/inlineCompletion",
                {
                    "textDocument": {"uri": doc["uri"]},
                    "position": {"line": line, "character": 0},
                    "context": {"triggerKind": 2},
                },
            )
            if rng.random() < 0.5:
                client.send({"method": "$/cancelRequest", "params": {"id": ident}})
                cancelled += 1
            answer.result(60)
            completed += 1
            t0 = time.perf_counter()
            client.stats()
            if edit > args.warmup:
                stats_ms.append((time.perf_counter() - t0) * 1000)
        if args.tracemalloc and edit in (args.warmup, args.edits):
            client.stats()  # (every edit before it handled)
            os.kill(client.proc.pid, signal.SIGUSR1)
            dumped = {args.warmup: "snapshot.1", args.edits: "snapshot.2"}.get(edit)
            while dumped and not (tmp / dumped).exists():
                time.sleep(0.1)
        if edit % 1000 == 0:
            samples.append((edit, client.rss_kb()))
            print(f"{edit:6d} edits  RSS {samples[-1][1] / 1024:7.1f} MB", flush=True)
    seconds = time.monotonic() - started
    client.close()
    if args.tracemalloc:
        print_growth(tmp / "snapshot.1", tmp / "snapshot.2")
    after = [(e, kb) for e, kb in samples if e >= args.warmup]
    growth = (after[-1][1] - after[0][1]) / 1024 / max(1, (after[-1][0] - after[0][0]) / 1000)
    stats_ms.sort()
    print(
        f"\n{args.edits} edits over {args.documents} documents in {seconds:.0f} s, "
        f"{completed} completion requests ({cancelled} cancelled)\n"
        f"RSS after warm-up ({args.warmup} edits): {after[0][1] / 1024:.1f} MB -> "
        f"{after[-1][1] / 1024:.1f} MB, {growth:.3f} MB per 1,000 edits\n"
        f"qwenLsp/stats latency between bursts: p50 {statistics.median(stats_ms):.2f} ms, "
        f"p99 {stats_ms[int(len(stats_ms) * 0.99)]:.2f} ms"
    )


if __name__ == "__main__":
    main()
