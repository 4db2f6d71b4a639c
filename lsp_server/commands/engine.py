"""`qwen-lsp engine status|stop`: the engine processes that hold the model for your
editors (lsp_server/engine/service.py): which run, which editors are attached, and a
way to free the model's memory now instead of after `engine.idleExitSeconds`."""

from __future__ import annotations

import argparse
import json
import os
from typing import Any


def register(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    p = sub.add_parser(
        "engine",
        help="show or stop the engine processes that hold the model for your editors",
        description="The model runs in an engine process of yours, shared by your editors "
        "(setting engine.shared). `status` lists the running engines and the editors "
        "attached to each; `stop` asks them to exit now, which frees the model's memory "
        "(the editors start one again with their next request).",
    )
    p.add_argument("action", choices=["status", "stop"], nargs="?", default="status")
    p.add_argument("--json", action="store_true", help="print one JSON object")
    p.set_defaults(func=run)


def describe(status: dict[str, Any]) -> str:
    """One engine in a few lines, as `status` and `qwen-lsp doctor` print it."""
    kind = "shared" if status.get("shared") else "private"
    model = os.path.basename(str(status.get("model", "")))
    state = status.get("modelState", "?")
    lines = [
        f"{kind} engine, pid {status.get('pid')}: {model} {state} "
        f"({status.get('modelLoads', 0)} load(s), {status.get('jobs', 0)} request(s), "
        f"peak RSS {status.get('peakRssMb')} MB, up {status.get('uptimeS')} s)"
    ]
    editors = status.get("editors") or []
    if editors:
        for editor in editors:
            where = f" in {editor['workspace']}" if editor.get("workspace") else ""
            lines.append(f"  attached: {editor.get('name')} (pid {editor.get('pid')}){where}")
    else:
        lines.append(f"  no editor attached: exits after {status.get('idleExitSeconds')} s idle")
    return "\n".join(lines)


def run(args: argparse.Namespace) -> int:
    from lsp_server.engine.client import engine_status, stop_engines
    from lsp_server.engine.endpoint import runtime_dir

    if args.action == "stop":
        pids = stop_engines()
        if args.json:
            print(json.dumps({"stopped": pids}))
        else:
            print(
                f"stopped {len(pids)} engine(s)"
                + (f": pid {', '.join(map(str, pids))}" if pids else "")
            )
        return 0
    engines = engine_status()
    if args.json:
        print(json.dumps({"runtimeDir": runtime_dir(), "engines": engines}, indent=2))
        return 0
    if not engines:
        print(
            f"no engine running (in {runtime_dir()}): the model is not loaded yet "
            "(it loads at the first completion an editor asks for)"
        )
    for status in engines:
        print(describe(status))
    return 0
