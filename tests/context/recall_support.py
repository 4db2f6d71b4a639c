"""What the recall tests of every language share: a workspace written in a temporary
folder, and the context gathered at the end of a file opened in it."""

from __future__ import annotations

import os
from pathlib import Path

from context.index import WorkspaceIndex
from context.retrieve import gather_context
from context.tokens import estimate_tokens
from context.types import PackedContext

BUDGET = 1024


def write_tree(root: Path, files: dict[str, str]) -> str:
    """Write `files` (relative path -> text) under `root`; returns its real path."""
    for name, text in files.items():
        target = root / name
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(text)
    return os.path.realpath(root)


def context_at_end(root: str, rel: str, text: str, budget: int = BUDGET) -> PackedContext:
    """Index `root`, open `rel` with `text` and gather at the end of it (no similar
    windows: the definition must come from retrieval, not from lexical luck)."""
    index = WorkspaceIndex([root], cache_dir="")
    index.build()
    path = os.path.join(root, rel)
    index.update_document(path, text)
    lines = text.split("\n")
    return gather_context(
        index,
        None,
        None,
        path=path,
        text=text,
        line=len(lines) - 1,
        character=len(lines[-1]),
        budget_tokens=budget,
        count_tokens=estimate_tokens,
    )
