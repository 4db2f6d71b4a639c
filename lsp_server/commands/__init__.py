"""Subcommands of `qwen-lsp`; each module adds its parser through `register(subparsers)`."""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from lsp_server.settings import LoadResult


def whole_number(minimum: int) -> Callable[[str], int]:
    """An argparse type: a whole number of at least ``minimum``."""

    def parse(value: str) -> int:
        try:
            number = int(value)
        except ValueError:
            raise argparse.ArgumentTypeError(f"not a whole number: {value!r}") from None
        if number < minimum:
            raise argparse.ArgumentTypeError(f"must be at least {minimum}, not {number}")
        return number

    return parse


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


def read_source(command: str, path: str, line: int) -> str | None:
    """The text of `path` (invalid UTF-8 replaced) when it has a 1-based `line`;
    otherwise None, after saying why on stderr."""
    try:
        with open(path, "rb") as handle:
            text = handle.read().decode("utf-8", "replace")
    except OSError as exc:
        print(f"qwen-lsp {command}: cannot read {path}: {exc.strerror}", file=sys.stderr)
        return None
    lines = text.count("\n") + 1
    if line > lines:
        print(
            f"qwen-lsp {command}: line {line} is past the end of {path} ({lines} lines)",
            file=sys.stderr,
        )
        return None
    return text


def load_settings_arg(command: str, value: str | None) -> LoadResult | None:
    """The settings tree given as `--settings JSON`, loaded (invalid values reported in
    the result); None, after saying why on stderr, when it is not JSON."""
    from lsp_server.settings import load_settings

    try:
        raw = json.loads(value) if value else {}
    except json.JSONDecodeError as exc:
        print(f"qwen-lsp {command}: --settings is not JSON: {exc}", file=sys.stderr)
        return None
    return load_settings(raw)
