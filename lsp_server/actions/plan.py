"""Which code actions to offer at a range: decided without the model, in milliseconds.

An action is a plan (what to ask the model, which whole lines it may rewrite); the model
runs only when the user picks one (``codeAction/resolve`` or the command fallback). The
lines rewritten are the innermost function or class around the range, so the model sees
a whole unit and the edit cannot touch anything outside it; without one (top-level code,
an unknown language) a few lines around the range.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import asdict, dataclass, replace
from typing import Any, Literal

from context.types import Definition

ActionKind = Literal["quickfix", "refactor.rewrite"]
Task = Literal["fix", "docstring", "annotate"]

# A definition longer than this is not rewritten whole: only the lines around the range.
MAX_TARGET_LINES = 200
# Lines kept around the range when there is no enclosing definition to rewrite.
AROUND_LINES = 6
# At most this many diagnostics get a fix of their own per request.
MAX_FIXES = 3

_UNITS = frozenset({"function", "method", "class", "struct", "interface", "enum", "impl", "trait"})
_CALLABLES = frozenset({"function", "method"})
# Languages with docstrings or doc comments the model knows how to write.
_DOC_LANGUAGES = frozenset(
    {"python", "javascript", "typescript", "tsx", "go", "rust", "java", "c", "cpp", "lua"}
)


@dataclass(frozen=True)
class Diagnostic:
    """A problem reported by the editor (any language server's), in our terms."""

    message: str
    start_line: int
    end_line: int
    source: str = ""


@dataclass(frozen=True)
class ActionPlan:
    """One code action: its title and kind, what the model is asked, the lines it rewrites."""

    task: Task
    kind: ActionKind
    title: str
    start_line: int  # first line rewritten, 0-based
    end_line: int  # last line rewritten, inclusive
    instruction: str
    name: str = ""  # the definition rewritten, when there is one
    digest: str = ""  # of the lines when planned: a rewrite of changed lines is refused
    diagnostic: int = -1  # for a fix: its diagnostic's index in those given to plan_actions

    def to_data(self) -> dict[str, Any]:
        """A JSON-able form, carried by the action until it is resolved."""
        return asdict(self)

    @classmethod
    def from_data(cls, data: Any) -> ActionPlan:
        """The plan back from ``to_data``; ValueError when it is not one of ours."""
        if not isinstance(data, dict):
            raise ValueError("not a qwen-lsp code action")
        try:
            plan = cls(**{k: data[k] for k in cls.__dataclass_fields__})
        except (KeyError, TypeError) as exc:
            raise ValueError(f"not a qwen-lsp code action: {exc}") from exc
        if plan.task not in ("fix", "docstring", "annotate") or not (
            isinstance(plan.start_line, int)
            and isinstance(plan.end_line, int)
            and 0 <= plan.start_line <= plan.end_line
        ):
            raise ValueError("not a qwen-lsp code action")
        return plan


def region_digest(text: str, start_line: int, end_line: int) -> str:
    """A short hash of lines ``start_line..end_line`` of ``text``."""
    lines = text.split("\n")[start_line : end_line + 1]
    return hashlib.blake2b(
        "\n".join(lines).encode("utf-8", "surrogatepass"), digest_size=8
    ).hexdigest()


def plan_actions(
    text: str,
    language: str | None,
    start_line: int,
    end_line: int,
    diagnostics: Sequence[Diagnostic],
    definitions: Sequence[Definition],
) -> list[ActionPlan]:
    """The actions for a range of ``text``: a fix per diagnostic that touches it (quick
    fixes first), then rewrites of the definition around it (a docstring when it has
    none, type annotations for Python functions)."""
    # The last line with text: the empty "line" after a final line break is not rewritten
    # (the file keeps its final newline).
    last = max(0, text.count("\n") - text.endswith("\n"))
    start_line, end_line = min(start_line, last), min(max(start_line, end_line), last)
    plans: list[ActionPlan] = []
    touching = [
        (i, d)
        for i, d in enumerate(diagnostics)
        if d.start_line <= end_line and d.end_line >= start_line
    ]
    for index, diag in touching[:MAX_FIXES]:
        first, final, unit = _target(diag.start_line, diag.end_line, definitions, last)
        message = " ".join(diag.message.split())
        where = f"line {diag.start_line + 1}"
        source = f" ({diag.source})" if diag.source else ""
        plans.append(
            ActionPlan(
                task="fix",
                kind="quickfix",
                title=f"Fix with Qwen: {_shorten(message, 60)}",
                start_line=first,
                end_line=final,
                instruction=(
                    f"Fix this problem reported at {where}{source}: {message}\n"
                    "Change only what the fix needs; keep everything else as it is."
                ),
                name=unit.name if unit else "",
                diagnostic=index,
            )
        )
    unit = _rewritable(start_line, end_line, definitions)
    if unit is not None:
        noun = "function" if unit.kind in _CALLABLES else unit.kind
        rewrites: list[tuple[Task, str, str]] = []
        if not unit.doc and language in _DOC_LANGUAGES:
            rewrites.append(
                (
                    "docstring",
                    f"Add a docstring to `{unit.name}`",
                    f"Add a concise docstring (or the language's doc comment) to the {noun} "
                    f"`{unit.name}`: what it does, its parameters and what it returns.",
                )
            )
        if language == "python" and unit.kind in _CALLABLES:
            rewrites.append(
                (
                    "annotate",
                    f"Add type annotations to `{unit.name}`",
                    f"Add type annotations to the parameters and the return value of "
                    f"`{unit.name}`, as precise as the code shows.",
                )
            )
        plans.extend(
            ActionPlan(
                task=task,
                kind="refactor.rewrite",
                title=f"{title} with Qwen",
                start_line=unit.start_line,
                end_line=unit.end_line,
                instruction=f"{instruction} Do not change the code itself.",
                name=unit.name,
            )
            for task, title, instruction in rewrites
        )
    return [replace(p, digest=region_digest(text, p.start_line, p.end_line)) for p in plans]


def _enclosing(start: int, end: int, definitions: Sequence[Definition]) -> Definition | None:
    """The innermost function, method or class spanning the lines."""
    best: Definition | None = None
    for d in definitions:
        if d.kind in _UNITS and d.start_line <= start and d.end_line >= end:
            if best is None or d.end_line - d.start_line < best.end_line - best.start_line:
                best = d
    return best


def _rewritable(start: int, end: int, definitions: Sequence[Definition]) -> Definition | None:
    """The enclosing unit, when it is short enough to be rewritten whole."""
    unit = _enclosing(start, end, definitions)
    if unit is not None and unit.end_line - unit.start_line < MAX_TARGET_LINES:
        return unit
    return None


def _target(
    start: int, end: int, definitions: Sequence[Definition], last: int
) -> tuple[int, int, Definition | None]:
    """The lines a fix may rewrite: the enclosing unit when not too long, else around."""
    unit = _rewritable(start, end, definitions)
    if unit is not None:
        return unit.start_line, unit.end_line, unit
    return max(0, start - AROUND_LINES), min(last, end + AROUND_LINES), None


def _shorten(text: str, width: int) -> str:
    return text if len(text) <= width else text[: width - 1].rstrip() + "…"
