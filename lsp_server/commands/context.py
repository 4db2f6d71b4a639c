"""`qwen-lsp context PATH:LINE:COL --workspace DIR`: the packed context the server would use.

Builds (or refreshes) the workspace index, gathers and packs the cross-file context for
the cursor and prints it: the rendered blocks as the model would see them, or with
``--json`` one object ``{"tokens", "prompt", "snippets": [{"path", "start_line",
"end_line", "tokens", "reason", "text"}]}`` (paths relative to the workspace, lines
1-based and inclusive). docs/context.md documents the format.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
import time
from typing import Any

from lsp_server.commands import parse_location, read_source, whole_number

log = logging.getLogger(__name__)


def register(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    """Add the `context` subcommand."""
    from lsp_server.settings import CompletionSettings, ContextSettings

    completion, context = CompletionSettings(), ContextSettings()
    p = sub.add_parser(
        "context",
        help="print the multi-file context the server would pack for PATH:LINE:COL",
        description="Index the workspace, gather the cross-file context for the cursor and "
        "print it as the model would see it (or as JSON with --json).",
    )
    p.add_argument(
        "location", type=parse_location, metavar="PATH:LINE:COL", help="1-based line and column"
    )
    p.add_argument("--workspace", metavar="DIR", required=True, help="the workspace root")
    p.add_argument(
        "--budget",
        type=whole_number(0),
        default=context.budget_tokens,
        metavar="N",
        help=f"token budget of the context (default {context.budget_tokens})",
    )
    p.add_argument(
        "--model", metavar="GGUF", help="count tokens with this model's tokenizer (vocabulary only)"
    )
    p.add_argument(
        "--format", choices=["fim", "chat"], default="fim", help="block format (default fim)"
    )
    p.add_argument("--json", action="store_true", help="print one JSON object")
    p.add_argument(
        "--prefix-lines", type=whole_number(0), default=completion.prefix_lines, metavar="N"
    )
    p.add_argument(
        "--suffix-lines", type=whole_number(0), default=completion.suffix_lines, metavar="N"
    )
    p.add_argument("--no-definitions", action="store_true", help="leave out definitions")
    p.add_argument("--no-recent", action="store_true", help="leave out recent activity")
    p.add_argument("--no-similar", action="store_true", help="leave out similar windows")
    p.add_argument(
        "--no-cache", action="store_true", help="do not read or write the persisted index"
    )
    p.set_defaults(func=run)


def _token_counter(model: str | None) -> Any:
    from context.tokens import CachedTokenCounter, estimate_tokens

    if not model:
        return estimate_tokens
    from lsp_server.engine.llama import vocabulary_token_counter  # loads llama.cpp

    return CachedTokenCounter(vocabulary_token_counter(model))


def run(args: argparse.Namespace) -> int:
    """Gather and print; 0 on success, 2 on bad input."""
    from context.pack import relative_path
    from context.recent import RecentActivity
    from context.retrieve import gather_context
    from context.similar import SimilarWindows

    path, line_no, col_no = args.location
    workspace = os.path.realpath(args.workspace)
    if not os.path.isdir(workspace):
        print(f"qwen-lsp context: not a folder: {args.workspace}", file=sys.stderr)
        return 2
    path = os.path.realpath(path)
    text = read_source("context", path, line_no)
    if text is None:
        return 2
    lines = text.split("\n")
    line, character = line_no - 1, min(col_no - 1, len(lines[line_no - 1]))
    try:
        count = _token_counter(args.model)
    except Exception as exc:  # a bad GGUF path or file: say so plainly
        print(
            f"qwen-lsp context: cannot load the tokenizer of {args.model}: {exc}", file=sys.stderr
        )
        return 2

    try:
        from context.index import WorkspaceIndex
    except ImportError as exc:
        print(f"qwen-lsp context: the workspace index is unavailable: {exc}", file=sys.stderr)
        return 1
    started = time.perf_counter()
    index = WorkspaceIndex([workspace], cache_dir="" if args.no_cache else None)
    stats = index.build()
    index.update_document(path, text)
    log.info("index ready in %.1f s: %s", time.perf_counter() - started, stats)
    similar = None
    if not args.no_similar:
        started = time.perf_counter()
        similar = SimilarWindows()
        similar.update_many(index.files(), index.text)
        log.info("similarity windows ready in %.1f s", time.perf_counter() - started)

    packed = gather_context(
        index,
        RecentActivity(),
        similar,
        path=path,
        text=text,
        line=line,
        character=character,
        budget_tokens=args.budget,
        count_tokens=count,
        fmt=args.format,
        definitions=not args.no_definitions,
        recent_edits=not args.no_recent,
        similar_windows=not args.no_similar,
        prefix_lines=args.prefix_lines,
        suffix_lines=args.suffix_lines,
    )
    if args.json:
        out = {
            "tokens": packed.tokens,
            "prompt": packed.text,
            "snippets": [
                {
                    "path": relative_path(s.path, workspace),
                    "start_line": s.start_line + 1,
                    "end_line": s.end_line + 1,
                    "tokens": s.tokens,
                    "reason": s.reason,
                    "text": s.text,
                }
                for s in packed.snippets
            ],
        }
        sys.stdout.write(json.dumps(out, ensure_ascii=False) + "\n")
    else:
        sys.stdout.write(packed.text)
        print(
            f"qwen-lsp context: {len(packed.snippets)} snippets, "
            f"{packed.tokens} of {args.budget} tokens",
            file=sys.stderr,
        )
    return 0
