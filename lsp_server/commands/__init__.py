"""Subcommands of `qwen-lsp`; each module adds its parser through `register(subparsers)`."""

from __future__ import annotations

import argparse


def parse_location(value: str) -> tuple[str, int, int]:
    """`PATH:LINE:COL`, LINE and COL 1-based (as compilers print them)."""
    rest, sep1, col = value.rpartition(":")
    path, sep2, line = rest.rpartition(":")
    try:
        if not (sep1 and sep2 and path):
            raise ValueError
        line_no, col_no = int(line), int(col)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected PATH:LINE:COL, got {value!r}") from None
    if line_no < 1 or col_no < 1:
        raise argparse.ArgumentTypeError("LINE and COL start at 1")
    return path, line_no, col_no
