"""`qwen-lsp complete PATH:LINE:COL`: the suggestion the server would show there, with its figures."""

from __future__ import annotations

import argparse
import json
import os
import sys
from typing import Any

from lsp_server.commands import load_settings_arg, parse_location, read_source
from lsp_server.completion.stats import figures_line, figures_to_wire


def register(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    p = sub.add_parser(
        "complete",
        help="print the suggestion the server would show at PATH:LINE:COL",
        description="Print the completion the server would show at a position, with its figures "
        "(prompt, reused and evaluated tokens, generated tokens, ms in prefill and generation).",
    )
    p.add_argument(
        "location", type=parse_location, metavar="PATH:LINE:COL", help="1-based line and column"
    )
    p.add_argument(
        "--model",
        metavar="GGUF",
        help="the model file (default: setting model.path, then the usual folders)",
    )
    p.add_argument(
        "--workspace", metavar="DIR", help="workspace root for multi-file context (default: none)"
    )
    p.add_argument(
        "--settings", metavar="JSON", help="settings as JSON, as an editor would send them"
    )
    p.add_argument("--json", action="store_true", help="print one JSON object")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from lsp_server.completion.document import PositionError
    from lsp_server.completion.stats import Stats
    from lsp_server.engine.client import ClientInfo
    from lsp_server.engine.types import EngineError
    from lsp_server.runtime import Runtime

    path, line, col = args.location
    result = load_settings_arg("complete", args.settings)
    if result is None:
        return 2
    for error in result.errors:
        print(f"qwen-lsp complete: invalid setting, using the default: {error}", file=sys.stderr)
    settings = result.settings
    if args.model:
        settings.model.path = args.model
    settings.engine.prefetch = settings.engine.warmup = False
    text = read_source("complete", path, line)
    if text is None:
        return 2
    messages: list[str] = []
    runtime = Runtime(settings, Stats(), notify=lambda message, level: messages.append(message))
    # Attaches to the editors' engine when one runs (the model is loaded already); one it
    # starts itself stays only a short while after (docs/shared-engine.md).
    workspace = os.path.basename(os.path.realpath(args.workspace)) if args.workspace else ""
    runtime.host.client = ClientInfo("qwen-lsp complete", workspace, os.getpid(), oneshot=True)
    try:
        if args.workspace:
            if not os.path.isdir(args.workspace):
                print(f"qwen-lsp complete: not a folder: {args.workspace}", file=sys.stderr)
                return 2
            runtime.roots = [os.path.realpath(args.workspace)]
            runtime.attach_workspace()
            runtime.build_index(None, None)
        runtime.load_model().result()
        if not runtime.ready:
            print(f"qwen-lsp complete: {runtime.host.message}", file=sys.stderr)
            return 1
        request = runtime.completion_request(os.path.realpath(path), text, line - 1, col - 1)
        try:
            completion = runtime.submit_completion("cli", request).future.result()
        except (PositionError, EngineError) as exc:
            print(f"qwen-lsp complete: {exc}", file=sys.stderr)
            return 1
    finally:
        runtime.close()
    suggestion = completion.suggestion
    figures = completion.figures
    if args.json:
        out: dict[str, Any] = {
            "text": suggestion.text if suggestion else "",
            "range": None,
            "format": completion.format,
            "outcome": completion.outcome,
            "totalMs": round(completion.total_ms, 2),
            "figures": figures_to_wire(figures),
        }
        if suggestion:
            out["range"] = {
                "start": {"line": suggestion.line + 1, "column": suggestion.character + 1},
                "end": {"line": suggestion.line + 1, "column": suggestion.end_character + 1},
            }
        print(json.dumps(out, indent=2))
    else:
        print(suggestion.text if suggestion else "(no suggestion)")
        print(
            f"--- {completion.format} prompt; {figures_line(figures)}; total {completion.total_ms:.0f} ms"
        )
    return 0
