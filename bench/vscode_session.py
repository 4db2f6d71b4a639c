"""A real VS Code session on a long file of a real project: what each completion costs.

VS Code for the web (code-server) with the extension, in headless Chromium driven by
playwright-core like a person (editors/vscode/test/browser/session.mjs), the server and a
shared engine as a user runs them (default settings: warm-up, prefetch, the checkpoint
cache), on the tiny `qwen35` built on Qwen3.6's real vocabulary (bench/_models.py), so
token counts are the real model's. The session is the one of bench/nvim_session.sh:

1. open click 8.1.7's `src/click/core.py` (3,042 lines, fetched from PyPI) with Quick
   Open, wait for "ready" and `--settle` seconds;
2. at line `--line`: open a line below it and type `rv = self.` one key at a time;
3. jump 1,000 lines down (Ctrl+G), open a line and type `x = ctx.`;
4. add `import sys` at the top of the file;
5. go back to the line typed in 3 and type `ab` at its end.

Prints, per phase, each completion the server logged (tokens of the prompt, reused,
evaluated; server time), the tokens the engine evaluated for each prompt it prepared
(its DEBUG log: the work of requests the next key cancelled included, which the server's
log cannot count for an engine in another process), and how long after the phase's last
key the ghost text showed.

    python bench/vscode_session.py [--line 1000] [--settle 10] [--json OUT]

Needs what the real-VS Code test needs (editors/vscode/test/browser/install.sh, which
.ci/run runs).
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import pathlib
import re
import shutil
import sys
import tempfile
from typing import Any

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent))
sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[1]))

import _sources  # noqa: E402
from _models import bench_model  # noqa: E402

from lsp_server.testing import code_server as vscode_web  # noqa: E402

FILE = "src/click/core.py"
# "2026-12-08 02:30:01.123 [info] lsp_server.completion.service: completion core.py:1001:11
# 12 chars in 431 ms (prompt 18012 tok, reused 17650, evaluated 362, ...)"; "cancelled"
# in place of "12 chars"; "prefetch" in place of "completion" for the suggestion after.
_LINE = re.compile(
    r"^(?P<when>\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\.\d+) \[\w+\] lsp_server\.completion\.service: "
    r"(?P<kind>completion|prefetch) (?P<where>\S+) (?P<what>.*?) in (?P<ms>\d+) ms"
    r"(?: \(prompt (?P<prompt>\d+) tok, "
    r"reused (?P<reused>\d+), evaluated (?P<evaluated>\d+))?"
)


def phases(line: int) -> list[dict[str, object]]:
    return [
        {
            "name": "type in place",
            "line": line,
            "newLine": True,
            "text": "rv = self.",
            "delayMs": 600,
            "waitMs": 30000,
            "afterMs": 15000,
        },
        {
            "name": "jump 1,000 lines",
            "line": line + 1000,
            "newLine": True,
            "text": "x = ctx.",
            "delayMs": 800,
            "waitMs": 60000,
            "afterMs": 15000,
        },
        {
            "name": "import at the top",
            "top": True,
            "text": "import sys\n",
            "delayMs": 100,
            "waitMs": 1,
            "afterMs": 3000,
        },
        {
            "name": "back, type",
            "line": line + 1002,
            "text": "ab",
            "delayMs": 800,
            "waitMs": 60000,
            "afterMs": 15000,
        },
    ]


# The engine's DEBUG line for each prompt it prepares: "2026-12-08 03:58:41,002 DEBUG
# lsp_server.engine.llama: prepare 9390 tokens in sequence 0 (request, live 0): common
# prefix 8244, from 8244" (N - P evaluated, cancelled requests' work included).
_PREPARE = re.compile(
    r"^(?P<when>\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d+) DEBUG \S+: prepare (?P<n>\d+) tokens "
    r"in sequence \d+ \((?P<kind>\w+),.*\): common prefix \d+, from (?P<start>\d+)"
)


def prepares(engine_log: str) -> list[dict[str, Any]]:
    found = []
    for text in engine_log.splitlines():
        match = _PREPARE.match(text)
        if match:
            when = datetime.datetime.strptime(match["when"], "%Y-%m-%d %H:%M:%S,%f")
            found.append(
                {
                    "at": when.replace(tzinfo=datetime.timezone.utc).timestamp() * 1000,
                    "kind": match["kind"],
                    "evaluated": int(match["n"]) - int(match["start"]),
                }
            )
    return found


def completions(channel: str) -> list[dict[str, object]]:
    found = []
    for text in channel.splitlines():
        match = _LINE.match(text)
        if match:
            when = datetime.datetime.strptime(match["when"], "%Y-%m-%d %H:%M:%S.%f")
            found.append(
                {
                    "at": when.replace(tzinfo=datetime.timezone.utc).timestamp() * 1000,
                    "kind": match["kind"],
                    "where": match["where"],
                    "what": match["what"],
                    "ms": int(match["ms"]),
                    "prompt": int(match["prompt"] or 0),
                    "reused": int(match["reused"] or 0),
                    "evaluated": int(match["evaluated"] or 0),
                }
            )
    return found


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--line", type=int, default=1000)
    parser.add_argument("--settle", type=float, default=10.0, help="idle seconds after ready")
    parser.add_argument("--json", metavar="OUT")
    parser.add_argument("--keep", action="store_true", help="keep the session's folder")
    args = parser.parse_args()
    missing = vscode_web.missing()
    if missing:
        print(f"a real VS Code needs {missing}: run {vscode_web.INSTALL}", file=sys.stderr)
        return 2
    project = _sources.pypi_sdist("click", "8.1.7")
    model = bench_model()
    tmp = pathlib.Path(tempfile.mkdtemp(prefix="qwen-vscode-session-"))
    workspace = tmp / "click"
    shutil.copytree(project, workspace)
    (workspace / ".git").mkdir(exist_ok=True)
    # An engine of this session's own, not one another editor of this user shares.
    os.environ["XDG_RUNTIME_DIR"] = str(tmp / "run")
    (tmp / "run").mkdir(mode=0o700)
    settings = {"qwenLsp.model.path": str(model), "qwenLsp.model.nGpuLayers": 0}
    artifacts = tmp / "artifacts"
    artifacts.mkdir()
    config = {"file": FILE, "settleMs": int(args.settle * 1000), "phases": phases(args.line)}
    debug = [sys.executable, "-m", "lsp_server", "--log-level", "DEBUG"]
    with vscode_web.code_server(tmp, workspace, settings, server_command=debug) as url:
        run = vscode_web.drive(
            vscode_web.BROWSER / "session.mjs",
            {**config, "url": url, "artifacts": str(artifacts)},
            900,
        )
    seen = json.loads(run.stdout or "{}")
    channel = vscode_web.output_channel(tmp)
    if run.returncode != 0:
        print(
            run.stderr[-3000:], json.dumps(seen)[-3000:], channel[-3000:], sep="\n", file=sys.stderr
        )
        print(f"screenshots: {artifacts}", file=sys.stderr)
        return 1
    logged = completions(channel)
    prepared = prepares(
        "".join(p.read_text(errors="replace") for p in (tmp / "run").glob("**/engine-*.log"))
    )
    print(f"file: click 8.1.7 {FILE}, model: tiny qwen35 on Qwen3.6's vocabulary, default settings")
    first = [c for c in logged if c["at"] < seen["phases"][0]["start"]]
    print(
        f"before the first phase (opened, ready after {(seen['ready'] - seen['opened']) / 1000:.1f} s): "
        f"{len(first)} completions logged"
    )
    report = {"ready_s": (seen["ready"] - seen["opened"]) / 1000, "phases": []}
    for phase in seen["phases"]:
        inside = [c for c in logged if phase["start"] <= c["at"] <= phase["end"]]
        work = [p for p in prepared if phase["start"] <= p["at"] <= phase["end"]]
        ghost = "none" if phase["ghostMs"] is None else f"{phase['ghostMs']} ms"
        print(f"\n{phase['name']}: ghost text {ghost} after the last key")
        for c in inside:
            print(
                f"  {c['kind']} {c['where']} {c['what']}: prompt {c['prompt']}, reused {c['reused']}, "
                f"evaluated {c['evaluated']}, {c['ms']} ms"
            )
        for kind in ("request", "background"):
            evaluated = [p["evaluated"] for p in work if p["kind"] == kind]
            print(f"  engine, {kind} prompts prepared: tokens evaluated {evaluated}")
        report["phases"].append({**phase, "completions": inside, "prepares": work})
    if args.json:
        pathlib.Path(args.json).write_text(json.dumps(report, indent=1))
    if args.keep:
        print(f"\nthe session's folder (VS Code's logs, screenshots): {tmp}")
    else:
        shutil.rmtree(tmp, ignore_errors=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
