"""Which code actions to offer at a range: decided without the model, in milliseconds.

An action is a plan (what to ask the model, which whole lines it may rewrite); the model
runs only when the user picks one (``codeAction/resolve`` or the command fallback).

- A fix of a syntax error rewrites the smallest block around it that parses once the
  error is taken out (``region.fix_region``), and may change only the lines of the error
  (``focus_start..focus_end``).
- A fix of another problem (a type checker's, a linter's) rewrites the function or class
  around it, or the statement outside one, and must change the problem's own text.
- *Add a docstring* and *Add type annotations* are offered where they apply: the cursor
  on the definition's first lines or a selection over it, and something missing (no
  docstring; a parameter or the return value without a type).
"""

from __future__ import annotations

import ast
import hashlib
import textwrap
from collections.abc import Sequence
from dataclasses import asdict, dataclass, replace
from typing import Any, Literal

from context.types import Definition
from lsp_server.actions.diagnostics import ParsedDocument, SyntaxProblem
from lsp_server.actions.region import fix_region, statement_block

ActionKind = Literal["quickfix", "refactor.rewrite"]
Task = Literal["fix", "docstring", "annotate"]

# A definition longer than this is not rewritten whole: only the lines around the range.
MAX_TARGET_LINES = 200
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
    start_char: int = 0  # code points
    end_char: int = -1  # -1: the end of the line


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
    # For a fix: the problem's text range (line, char, end line, end char; code points),
    # whether it is a syntax error, and the lines a syntax fix may change.
    target: tuple[int, int, int, int] = (-1, 0, -1, -1)
    syntax: bool = False
    focus_start: int = -1
    focus_end: int = -1

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
            target = tuple(int(v) for v in plan.target)
            if len(target) != 4:
                raise TypeError("target")
            plan = replace(plan, target=target)  # (a list after JSON)
        except (KeyError, TypeError, ValueError) as exc:
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
    *,
    selection: bool = False,
    parsed: ParsedDocument | None = None,
) -> list[ActionPlan]:
    """The actions for a range of ``text``: a fix per diagnostic that touches it (quick
    fixes first), then the rewrites of the definition there that apply. ``selection``:
    the range selects text (not only a cursor); ``parsed``: the text's parse, with its
    syntax errors (a diagnostic on one gets a syntax fix)."""
    # The last line with text: the empty "line" after a final line break is not rewritten
    # (the file keeps its final newline).
    last = max(0, text.count("\n") - text.endswith("\n"))
    start_line, end_line = min(start_line, last), min(max(start_line, end_line), last)
    lines = text.split("\n")
    plans: list[ActionPlan] = []
    touching = [
        (i, d)
        for i, d in enumerate(diagnostics)
        if d.start_line <= end_line and d.end_line >= start_line
    ]
    for index, diag in touching[:MAX_FIXES]:
        plans.append(_fix(diag, index, lines, last, definitions, parsed))
    unit = _rewritable(start_line, end_line, definitions)
    on_header = unit is not None and (
        selection or unit.start_line <= start_line <= max(unit.signature_end_line, unit.start_line)
    )
    if unit is not None and on_header:
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
        if language == "python" and unit.kind in _CALLABLES and _lacks_types(lines, unit):
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


def _fix(
    diag: Diagnostic,
    index: int,
    lines: list[str],
    last: int,
    definitions: Sequence[Definition],
    parsed: ParsedDocument | None,
) -> ActionPlan:
    message = " ".join(diag.message.split())
    where = f"line {diag.start_line + 1}"
    source = f" ({diag.source})" if diag.source else ""
    problem = _syntax_problem(diag, parsed)
    name = ""
    if problem is not None and parsed is not None:
        # (Only the part of the document that holds it: the others parse on their own.)
        part = parsed.part(problem.line)
        first, final = fix_region(
            part,
            problem.line - part.first_line,
            problem.end_line - part.first_line,
            MAX_TARGET_LINES,
        )
        first, final = first + part.first_line, final + part.first_line
        focus = (max(first, min(problem.line, problem.focus_start)), min(final, problem.focus_end))
        unit = _enclosing(first, final, definitions)
        name = unit.name if unit else ""
    else:
        unit = _rewritable(diag.start_line, diag.end_line, definitions)
        if unit is not None:
            # (A broken bracket elsewhere can make the tree's definition run on to the end
            # of the file: its indentation says where it ends.)
            _, block_end = statement_block(lines, unit.start_line, unit.start_line)
            first, final, name = unit.start_line, min(unit.end_line, block_end), unit.name
            final = max(final, diag.end_line)
        else:
            first, final = statement_block(lines, diag.start_line, min(diag.end_line, last))
            final = min(final, last)
        focus = (first, final)
    end_char = diag.end_char if diag.end_char >= 0 else len(lines[min(diag.end_line, last)])
    return ActionPlan(
        task="fix",
        kind="quickfix",
        title=f"Fix with Qwen: {_shorten(message, 60)}",
        start_line=first,
        end_line=final,
        instruction=(
            f"Fix this problem reported at {where}{source}: {message}\n"
            "Change only what the fix needs; keep everything else as it is."
        ),
        name=name,
        diagnostic=index,
        target=(diag.start_line, diag.start_char, diag.end_line, end_char),
        syntax=problem is not None,
        focus_start=focus[0],
        focus_end=focus[1],
    )


def _syntax_problem(diag: Diagnostic, parsed: ParsedDocument | None) -> SyntaxProblem | None:
    """The syntax error the diagnostic reports (ours, or another server's on the same
    place), None when it is about something else."""
    if parsed is None:
        return None
    for problem in parsed.problems:
        if diag.start_line <= problem.line <= diag.end_line or (
            problem.line <= diag.start_line <= problem.end_line
        ):
            return problem
    return None


def _lacks_types(lines: list[str], unit: Definition) -> bool:
    """Whether a Python function has a parameter (besides `self`/`cls`) or a return value
    without a type annotation; a signature Python cannot read counts as complete."""
    header = "\n".join(lines[unit.start_line : max(unit.signature_end_line, unit.start_line) + 1])
    header = textwrap.dedent(header)
    try:
        tree = ast.parse(header + "\n    pass\n")
    except (SyntaxError, ValueError, RecursionError):
        return False
    node = tree.body[0] if tree.body else None
    if not isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
        return False
    args = node.args
    positional = [*args.posonlyargs, *args.args]
    if positional and positional[0].arg in ("self", "cls") and unit.kind == "method":
        positional = positional[1:]
    params = [*positional, *args.kwonlyargs]
    params += [a for a in (args.vararg, args.kwarg) if a is not None]
    return node.returns is None or any(a.annotation is None for a in params)


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


def _shorten(text: str, width: int) -> str:
    return text if len(text) <= width else text[: width - 1].rstrip() + "…"
