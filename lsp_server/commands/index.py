"""`qwen-lsp index DIR`: build or refresh the persisted workspace index and say what it holds."""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from typing import Any

from lsp_server.commands import whole_number


def register(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    """Add the `index` subcommand."""
    p = sub.add_parser(
        "index",
        help="build or refresh the workspace index of DIR",
        description="Index every source file under DIR (reusing the persisted index for "
        "unchanged files), then print what the index holds: files, definitions, languages, "
        "files parsed, read as text and reused, seconds.",
    )
    p.add_argument("directory", metavar="DIR", nargs="+", help="workspace root(s)")
    p.add_argument(
        "--cache-dir",
        metavar="D",
        help="where the index databases live (default: the user cache dir)",
    )
    p.add_argument("--no-cache", action="store_true", help="do not read or write a persisted index")
    p.add_argument(
        "--max-file-size",
        type=whole_number(1),
        default=1_000_000,
        metavar="BYTES",
        help="skip larger files (default 1000000)",
    )
    p.add_argument(
        "--exclude",
        action="append",
        default=[],
        metavar="GLOB",
        help="gitignore-style pattern to skip (repeatable)",
    )
    p.add_argument("--json", action="store_true", help="print one JSON object")
    p.set_defaults(func=run)


class _Progress:
    """A progress bar on stderr (tqdm when installed and stderr is a terminal)."""

    def __init__(self, enabled: bool) -> None:
        self.enabled = enabled
        self.bar: Any = None
        self.last = 0.0

    def __call__(self, done: int, total: int, path: str) -> None:
        if not self.enabled:
            return
        if self.bar is None:
            try:
                from tqdm import tqdm

                self.bar = tqdm(total=total, unit="file", file=sys.stderr, leave=False)
            except ImportError:
                self.bar = False
        if self.bar:
            self.bar.total = total
            self.bar.n = done
            self.bar.refresh()
            return
        now = time.monotonic()
        if now - self.last >= 0.1 or done == total:
            self.last = now
            print(f"\rindexing {done}/{total} files", end="", file=sys.stderr, flush=True)

    def close(self) -> None:
        if self.bar:
            self.bar.close()
        elif self.bar is False:
            print(file=sys.stderr)


def run(args: argparse.Namespace) -> int:
    """Build the index of the given roots and print its summary."""
    from context.index import WorkspaceIndex

    roots = [os.path.realpath(d) for d in args.directory]
    for root in roots:
        if not os.path.isdir(root):
            print(f"qwen-lsp index: not a folder: {root}", file=sys.stderr)
            return 2
    cache_dir = "" if args.no_cache else args.cache_dir
    progress = _Progress(enabled=sys.stderr.isatty())
    with WorkspaceIndex(
        roots, cache_dir=cache_dir, max_file_size=args.max_file_size, exclude=args.exclude
    ) as index:
        try:
            stats = index.build(progress=progress)
        except KeyboardInterrupt:
            progress.close()
            print("qwen-lsp index: interrupted", file=sys.stderr)
            return 130
        progress.close()
        report: dict[str, Any] = {
            "roots": roots,
            "files": stats.files,
            "definitions": stats.definitions,
            "languages": stats.languages,
            "parsed": stats.parsed,
            "read_as_text": stats.read_as_text,
            "reused": stats.reused,
            "removed": stats.removed,
            "skipped": stats.skipped,
            "seconds": round(stats.seconds, 3),
            "databases": index.database_paths(),
        }
    # Measured after close: closing folds the write-ahead log into the database.
    report["size_bytes"] = index.size_on_disk()
    if args.json:
        print(json.dumps(report))
        return 0
    languages = (
        ", ".join(
            f"{name} {count}"
            for name, count in sorted(stats.languages.items(), key=lambda kv: -kv[1])
        )
        or "none"
    )
    print(f"{stats.files} files, {stats.definitions} definitions in {stats.seconds:.2f} s")
    print(
        f"  parsed {stats.parsed}, read as text {stats.read_as_text}, reused {stats.reused}, "
        f"removed {stats.removed}, "
        f"skipped {stats.skipped} (binary or too big)"
    )
    print(f"  languages: {languages}")
    if report["databases"]:
        print(f"  index: {', '.join(report['databases'])} ({report['size_bytes'] / 1e6:.1f} MB)")
    elif args.no_cache:
        print("  index: not persisted (--no-cache)")
    else:
        print("  index: not persisted (the cache folder cannot be used: see the warning above)")
    return 0
