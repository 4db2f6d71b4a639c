"""Memory with 1, 2 and 5 editors: one shared engine against one engine per server.

Starts N real `qwen-lsp` servers over stdio (as N editor windows would), each opening a
file and asking for one completion, first with `engine.shared` true (one engine process
for all), then false (an engine process per server: the model once per window, as when
each server loaded it in-process). With every server answered, it sums the memory of
the servers and of the engine processes: RSS, and PSS (a page shared by k processes
counts 1/k: what the machine really spends), and reports the engines' peak RSS and the
time until each editor's first suggestion (from opening the file: the model's load
starts there, not when the server starts). `--idle` adds the same editors with only a
Markdown file and a commit message open, each asked for a suggestion in both: no model
is loaded and no engine process started for them.

The model is a random-weight qwen35 whose f32 weights dominate (≈95 MB; override the
size with --embd/--ff/--layers). On the CPU llama.cpp maps the weights from the file,
so engines of the same file share them in the page cache (PSS shows it, RSS does not);
with GPU offload each engine copies them into GPU memory, once per engine.

    python bench/shared_engine.py [--editors 1,2,5] [--idle]
"""

from __future__ import annotations

import argparse
import json
import os
import pathlib
import sys
import tempfile
import time
from typing import Any

ROOT = pathlib.Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from lsp_server.engine.client import engine_status, stop_engines  # noqa: E402
from lsp_server.testing.lsp_client import StdioServer  # noqa: E402
from lsp_server.testing.tiny_gguf import build_qwen35  # noqa: E402

SOURCE = "import math\n\n\ndef area(radius):\n    return math.pi * radius ** 2\n\n\ndef circumference(radius):\n    return "


class Server(StdioServer):
    """A `qwen-lsp` over stdio, driven by hand."""

    def __init__(self, name: str, workspace: pathlib.Path, init: dict[str, Any]) -> None:
        super().__init__()
        self.initialize(workspace, init, process_id=os.getpid(), client_name=name, timeout=120)

    def prose(self, workspace: pathlib.Path) -> None:
        """Open a Markdown file and a commit message and ask for a suggestion in each (a
        Neovim that git opened, a window of notes): answered without the model."""
        for path, language in (
            (workspace / "notes.md", "markdown"),
            (workspace / ".git" / "COMMIT_EDITMSG", "gitcommit"),
        ):
            path.parent.mkdir(exist_ok=True)
            path.write_text("The area of a circle is ")
            uri = path.as_uri()
            self.notify(
                "textDocument/didOpen",
                {
                    "textDocument": {
                        "uri": uri,
                        "languageId": language,
                        "version": 1,
                        "text": "The area of a circle is ",
                    }
                },
            )
            params = {
                "textDocument": {"uri": uri},
                "position": {"line": 0, "character": 24},
                "context": {"triggerKind": 1},
            }
            self.request("textDocument/inlineCompletion", params).result(120)

    def first_suggestion(self, path: pathlib.Path) -> float:
        """Open `path` and ask until the model has answered; seconds it took."""
        started = time.monotonic()
        uri = path.as_uri()
        self.notify(
            "textDocument/didOpen",
            {"textDocument": {"uri": uri, "languageId": "python", "version": 1, "text": SOURCE}},
        )
        lines = SOURCE.split("\n")
        self.wait_model(300)
        self.inline(uri, len(lines) - 1, len(lines[-1])).result(120)
        return time.monotonic() - started


def memory_mb(pid: int) -> tuple[float, float]:
    """(RSS, PSS) of a process in MB, from /proc/PID/smaps_rollup."""
    values = {}
    with open(f"/proc/{pid}/smaps_rollup") as fh:
        for line in fh:
            parts = line.split()
            if parts and parts[0] in ("Rss:", "Pss:"):
                values[parts[0]] = int(parts[1]) / 1024
    return values["Rss:"], values["Pss:"]


def measure(model: pathlib.Path, editors: int, shared: bool, work: pathlib.Path) -> dict[str, Any]:
    init = {
        "model": {"path": str(model), "threads": 1, "contextSize": 2048},
        "completion": {"maxTokens": 16},
        "context": {"enabled": False},
        "engine": {"warmup": False, "prefetch": False, "shared": shared, "idleExitSeconds": 5},
    }
    ws = work / f"ws-{editors}-{shared}"
    ws.mkdir()
    (ws / "geometry.py").write_text(SOURCE)
    servers = []
    firsts = []
    try:
        for i in range(editors):
            server = Server(f"editor-{i + 1}", ws, init)
            servers.append(server)
            firsts.append(server.first_suggestion(ws / "geometry.py"))
        engines = engine_status()
        server_mem = [memory_mb(s.proc.pid) for s in servers]
        engine_mem = [memory_mb(e["pid"]) for e in engines]
        return {
            "editors": editors,
            "shared": shared,
            "engines": len(engines),
            "modelLoads": sum(e["modelLoads"] for e in engines),
            "serversRssMb": round(sum(m[0] for m in server_mem), 1),
            "serversPssMb": round(sum(m[1] for m in server_mem), 1),
            "enginesRssMb": round(sum(m[0] for m in engine_mem), 1),
            "enginesPssMb": round(sum(m[1] for m in engine_mem), 1),
            "enginesPeakRssMb": round(sum(e["peakRssMb"] for e in engines), 1),
            "firstSuggestionS": [round(f, 2) for f in firsts],
        }
    finally:
        for server in servers:
            server.close()
        stop_engines()


def measure_idle(model: pathlib.Path, editors: int, work: pathlib.Path) -> dict[str, Any]:
    """`editors` servers with only prose open (Markdown, a commit message): the engines
    and model loads there are (none) and what the servers cost."""
    init = {
        "model": {"path": str(model), "threads": 1, "contextSize": 2048},
        "context": {"enabled": False},
        "engine": {"warmup": False, "prefetch": False, "idleExitSeconds": 5},
    }
    ws = work / f"ws-idle-{editors}"
    ws.mkdir()
    servers = []
    try:
        for i in range(editors):
            server = Server(f"editor-{i + 1}", ws, init)
            servers.append(server)
            server.prose(ws)
        time.sleep(1.0)  # past the open's debounce: a warm-up would have loaded it
        states = [s.request("qwenLsp/stats", {}).result(60)["result"]["model"] for s in servers]
        engines = engine_status()
        server_mem = [memory_mb(s.proc.pid) for s in servers]
        return {
            "editors": editors,
            "shared": "prose only",
            "models": sorted(set(states)),
            "engines": len(engines),
            "modelLoads": sum(e["modelLoads"] for e in engines),
            "serversRssMb": round(sum(m[0] for m in server_mem), 1),
            "serversPssMb": round(sum(m[1] for m in server_mem), 1),
        }
    finally:
        for server in servers:
            server.close()
        stop_engines()


def overhead(model: pathlib.Path, requests: int) -> dict[str, Any]:
    """Completions at line ends of a real file (lsp_server/runtime.py, no workspace
    context) through the same `Completer`, over the engine in this process and over the
    engine process: the time per completion, and the token counts that crossed."""
    import random
    import statistics

    from lsp_server.completion.service import Completer, CompletionRequest
    from lsp_server.engine.client import ClientInfo, EngineClient
    from lsp_server.engine.llama import LlamaEngine
    from lsp_server.engine.types import EngineConfig
    from lsp_server.settings import Settings

    text = (ROOT / "lsp_server" / "runtime.py").read_text()
    lines = text.split("\n")
    rng = random.Random(7)
    picks = [rng.randrange(20, len(lines)) for _ in range(requests)]
    settings = Settings()
    settings.completion.max_tokens = 16
    config = EngineConfig(model_path=str(model), n_ctx=8192, n_threads=1)
    out: dict[str, Any] = {}
    for name in ("in-process", "engine process"):
        engine: Any = (
            LlamaEngine(config)
            if name == "in-process"
            else EngineClient.attach(config, client=ClientInfo("bench"))
        )
        counts = 0
        if name != "in-process":
            real = engine._count

            def counted(piece: str, real: Any = real) -> int:
                nonlocal counts
                counts += 1
                return int(real(piece))

            engine._count = counted
        completer = Completer(engine, settings)
        times = []
        for line in picks:
            request = CompletionRequest(
                path=str(ROOT / "lsp_server" / "runtime.py"),
                text=text,
                line=line,
                character=len(lines[line]),
                display_path="lsp_server/runtime.py",
            )
            started = time.perf_counter()
            completer.complete(request)
            times.append((time.perf_counter() - started) * 1000)
        engine.close()
        times.sort()
        out[name] = {
            "p50Ms": round(statistics.median(times), 1),
            "p95Ms": round(times[int(0.95 * (len(times) - 1))], 1),
            "countRoundTrips": counts,
        }
    stop_engines()
    return out


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--editors", default="1,2,5", help='"" skips the memory figures')
    parser.add_argument("--embd", type=int, default=768)
    parser.add_argument("--ff", type=int, default=2048)
    parser.add_argument("--layers", type=int, default=8)
    parser.add_argument("--json", action="store_true")
    parser.add_argument(
        "--idle", action="store_true", help="also servers with only Markdown and a commit open"
    )
    parser.add_argument(
        "--overhead", type=int, default=0, metavar="N", help="also time N completions both ways"
    )
    args = parser.parse_args()
    work = pathlib.Path(tempfile.mkdtemp(prefix="ql-bench-"))
    os.environ["QWEN_LSP_RUNTIME_DIR"] = str(work / "run")
    model = build_qwen35(work / "model.gguf", n_embd=args.embd, n_ff=args.ff, n_layer=args.layers)
    size = model.stat().st_size / 2**20
    print(f"model: qwen35 n_embd {args.embd}, n_ff {args.ff}, {args.layers} layers, {size:.0f} MB")
    rows = []
    for shared in (True, False) if args.editors else ():
        for editors in map(int, args.editors.split(",")):
            row = measure(model, editors, shared, work)
            rows.append(row)
            if args.json:
                print(json.dumps(row))
            else:
                print(
                    f"{'shared ' if shared else 'private'} editors {editors}: "
                    f"{row['engines']} engine(s), {row['modelLoads']} load(s); "
                    f"engines RSS {row['enginesRssMb']} MB, PSS {row['enginesPssMb']} MB, "
                    f"peak RSS {row['enginesPeakRssMb']} MB; "
                    f"servers RSS {row['serversRssMb']} MB, PSS {row['serversPssMb']} MB; "
                    f"first suggestion {row['firstSuggestionS']} s"
                )
    for editors in map(int, args.editors.split(",")) if args.idle and args.editors else ():
        row = measure_idle(model, editors, work)
        if args.json:
            print(json.dumps(row))
        else:
            print(
                f"prose only editors {editors}: model {', '.join(row['models'])}; "
                f"{row['engines']} engine(s), {row['modelLoads']} load(s); "
                f"servers RSS {row['serversRssMb']} MB, PSS {row['serversPssMb']} MB"
            )
    if args.overhead:  # on the default tiny model: the time outside llama.cpp shows
        tiny = build_qwen35(work / "tiny.gguf")
        print(
            "completion time, in-process vs engine process:",
            json.dumps(overhead(tiny, args.overhead)),
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
