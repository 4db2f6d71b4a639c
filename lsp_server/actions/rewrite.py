"""Run one code action: ask the model to rewrite the planned lines, check what comes back.

The prompt is the model's chat template (thinking off) with an editing instruction, the
multi-file context the completions use, the file and the lines to rewrite; the answer
starts inside a code fence, so the model writes code and closes the fence.

What it returns may replace only the planned lines, and is applied only when it passes
every check of ``finish``; the edit is then the lines that changed, nothing more:

- whole (not cut by the token or time limit), and different from the lines;
- plausible code: no control characters but tab and line breaks, no code fence or prose
  line, the file's indentation (tabs or spaces), a length within bounds of the lines it
  replaces (``FIX_SHRINK`` ...);
- no syntax error added anywhere in the file, and for a fix of a syntax error, that
  error gone and only its lines changed; for a fix of another problem, the problem's
  own text changed.

A refused rewrite changes nothing, and its message names the rule.
"""

from __future__ import annotations

import ast
import logging
import re
import time
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from difflib import SequenceMatcher

from tree_sitter import Node

from context.languages import has_grammar, language_of_document
from context.symbols import parse
from lsp_server.actions.diagnostics import syntax_problems
from lsp_server.actions.plan import ActionPlan, region_digest
from lsp_server.completion.prompt import (
    ALL_SPECIALS,
    ContextBlock,
    Prompt,
    Segment,
    fence_language,
    render_chat_frame,
)
from lsp_server.completion.service import ContextProvider, ContextQuery
from lsp_server.completion.stats import Stats
from lsp_server.engine.types import NEVER, CancelToken, Engine, Figures
from lsp_server.settings import Settings

log = logging.getLogger(__name__)

EDIT_SYSTEM_PROMPT = (
    "You are a code editing tool inside a code editor. You rewrite the lines of code you "
    "are given as the user asks, keeping their indentation and style. Reply with the "
    "complete rewritten lines in one code block and nothing else."
)
# The whole file is shown when it is at most this long, else this many lines around.
WHOLE_FILE_LINES = 300
AROUND_LINES = 80
# Tokens kept free besides the answer (template, instruction).
RESERVE_TOKENS = 256
# Up to this size the whole file is parsed before and after the rewrite; beyond it (a
# 50 MB log, a generated file) only the lines rewritten, so the check stays quick.
WHOLE_FILE_CHECK_BYTES = 1 << 20


@dataclass(frozen=True)
class RewriteRequest:
    plan: ActionPlan
    path: str  # as the index knows it (absolute), or the URI of an unsaved buffer
    display_path: str  # shown to the model (relative to the workspace)
    text: str  # the document now
    language_id: str = ""  # the editor's, for a path with no extension (a notebook cell)


@dataclass
class RewriteResult:
    """The edit: old lines ``[start_line, end_line)`` become ``new_text`` (``count``
    lines; an insertion when the range is empty, a deletion when there are none).
    ``new_text`` None: nothing to change, ``message`` says why."""

    new_text: str | None
    message: str
    figures: Figures
    start_line: int = 0
    end_line: int = 0
    count: int = 0
    total_ms: float = 0.0

    def apply(self, text: str) -> str:
        """``text`` with the edit made (itself when there is none)."""
        if self.new_text is None:
            return text
        eol = "\r\n" if "\r\n" in text else "\n"
        lines = text.split(eol)
        new = self.new_text.split(eol) if self.count else []
        return eol.join([*lines[: self.start_line], *new, *lines[self.end_line :]])


class Rewriter:
    """Runs code actions through the engine; call only from the engine's owner thread."""

    def __init__(
        self,
        engine: Engine,
        settings: Settings,
        *,
        context: ContextProvider | None = None,
        stats: Stats | None = None,
    ) -> None:
        self.engine = engine
        self.settings = settings
        self.count_tokens = engine.count_tokens
        self.context = context
        self.stats = stats or Stats()
        info = engine.info
        self._frame = render_chat_frame(
            info.chat_template, info.bos, info.eos, system=EDIT_SYSTEM_PROMPT
        )

    def build(self, request: RewriteRequest) -> Prompt:
        plan = request.plan
        lines = _lines(request.text)
        end = min(plan.end_line, len(lines) - 1)
        region = "\n".join(lines[plan.start_line : end + 1])
        lang = fence_language(request.path, request.language_id)
        head, tail = self._frame
        max_tokens = self.settings.code_actions.max_tokens
        room = self.engine.n_ctx - max_tokens - RESERVE_TOKENS - 2 * self.count_tokens(region)
        view = _file_view(lines, plan.start_line, end)
        view_tokens = self.count_tokens(view)
        view_text = ""
        if view and view_tokens <= room // 2:
            view_text = f"The file `{request.display_path}`:\n```{lang}\n{view}\n```\n\n"
            room -= view_tokens + RESERVE_TOKENS // 8  # the view's header and fences
        blocks = self._context(request, room) if room > 0 else ()
        segments = [Segment("head", head, ALL_SPECIALS)]
        if blocks:
            segments.append(
                Segment("context-intro", "Code from other files of the repository:\n\n")
            )
            segments.extend(
                Segment(f"context-{i}", block.text, block.specials)
                for i, block in enumerate(blocks)
            )
        segments.append(
            Segment(
                "request",
                f"{view_text}Lines {plan.start_line + 1}-{end + 1} of `{request.display_path}`:\n"
                f"```{lang}\n{region}\n```\n\n{plan.instruction}\n"
                "Reply with the complete rewritten lines only, in one code block.",
            )
        )
        segments.append(Segment("answer-start", f"{tail}```{lang}\n", ALL_SPECIALS))
        return Prompt("chat", tuple(segments), stop=("```",))

    def _context(self, request: RewriteRequest, budget: int) -> Sequence[ContextBlock]:
        if self.context is None or not self.settings.context.enabled:
            return ()
        query = ContextQuery(
            request.path,
            request.text,
            request.plan.start_line,
            0,
            min(self.settings.context.budget_tokens, budget),
            "chat",
            language_id=request.language_id,
        )
        try:
            return self.context(query, self.count_tokens)
        except Exception:  # context is an enhancement: never lose the action
            log.exception("gathering context for a code action failed; going on without it")
            return ()

    def run(self, request: RewriteRequest, cancel: CancelToken = NEVER) -> RewriteResult:
        started = time.perf_counter()
        plan = request.plan
        lines = request.text.split("\n")
        if plan.end_line >= len(lines) or (
            plan.digest
            and region_digest(request.text, plan.start_line, plan.end_line) != plan.digest
        ):
            return RewriteResult(
                None,
                "the code changed since the action was offered: nothing was changed",
                Figures(),
            )
        prompt = self.build(request)
        generation = self.engine.run(
            prompt,
            max_tokens=self.settings.code_actions.max_tokens,
            rule=_closing_fence,
            cancel=cancel,
        )
        result = finish(request, generation.text, generation.stop_reason)
        result.figures = generation.figures
        result.total_ms = (time.perf_counter() - started) * 1000
        self.stats.record(
            generation.figures,
            kind="codeAction",
            path=request.path,
            total_ms=result.total_ms,
            outcome="ok" if result.new_text is not None else "rejected",
        )
        log.info(
            "code action %r on %s:%d-%d: %s in %.0f ms",
            plan.task,
            request.display_path,
            plan.start_line + 1,
            plan.end_line + 1,
            result.message,
            result.total_ms,
        )
        return result


def finish(request: RewriteRequest, answer: str, stop_reason: str) -> RewriteResult:
    """Check the model's answer and turn it into the smallest edit of the planned lines.

    The blank lines at the start and end of the planned lines are kept as they are (the
    model's answer is trimmed of its own), so a rewrite never glues what it touches to
    its neighbours; a file with CRLF line ends gets CRLF in the new text too. Every
    refusal names its rule and changes nothing (``new_text`` None).
    """
    plan = request.plan

    def refuse(why: str) -> RewriteResult:
        return RewriteResult(None, f"{why}: nothing was changed", Figures())

    if stop_reason in ("length", "time"):
        limit = "codeActions.maxTokens" if stop_reason == "length" else "codeActions.timeBudgetMs"
        return refuse(f"the rewrite was cut by {limit}")
    code = _strip_answer(answer)
    lines = _lines(request.text)
    region = lines[plan.start_line : plan.end_line + 1]
    lead = next((i for i, line in enumerate(region) if line.strip()), len(region))
    trail = next((i for i, line in enumerate(reversed(region)) if line.strip()), 0)
    if lead == len(region):  # only blank lines: the code takes their place
        lead = trail = 0
    code = _without_neighbours(code, lines, plan.start_line + lead, plan.end_line - trail)
    old = "\n".join(region[lead : len(region) - trail])
    deletes = plan.task == "fix" and not code.strip() and _may_delete(old, plan)
    if not code.strip() and not deletes:
        return refuse("Qwen returned no code")
    implausible = _implausible(code, old, plan, request.text)
    if implausible:
        return refuse(implausible)
    if code.strip():
        moved = _reindented(code, old)
        if moved is None:
            return refuse("Qwen's rewrite is not indented like the code")
        code = moved
    if code.rstrip() == old.rstrip():
        return RewriteResult(None, "Qwen suggested no change", Figures())
    body = code.split("\n") if code.strip() else []
    new_lines = [*region[:lead], *body, *region[len(region) - trail :]]
    start, stop, changed = minimal_change(region, new_lines)
    first, final = plan.start_line + start, plan.start_line + stop  # old lines [first, final)
    new_file = [*lines[: plan.start_line], *new_lines, *lines[plan.end_line + 1 :]]
    if _spills(changed, lines, plan.start_line, plan.end_line, fuzzy=plan.syntax):
        return refuse("Qwen's answer rewrites code after or before the planned lines too")
    language = language_of_document(request.path, request.language_id)
    if language is not None and has_grammar(language):  # (no check for text languages)
        if _has_prose(new_file, plan.start_line + start, len(changed), language):
            return refuse("Qwen's answer has prose lines, not only code")
        why = _syntax_check(request, language, lines, new_file, new_lines)
        if why:
            return refuse(why)
    elif _has_prose_lines(changed):
        return refuse("Qwen's answer has prose lines, not only code")
    if plan.task == "fix":
        why = _fix_check(plan, lines, first, final, changed, start, region, new_lines)
        if why:
            return refuse(why)
    eol = "\r\n" if "\r\n" in request.text else "\n"
    if final - first == 1:
        message = f"rewrote line {first + 1}"
    elif final > first:
        message = f"rewrote lines {first + 1}-{final}"
    else:
        message = f"inserted {len(changed)} lines after line {first}"
    return RewriteResult(eol.join(changed), message, Figures(), first, final, len(changed))


# How far a rewrite's length may stray from the lines it replaces, in characters of code
# (whitespace not counted): a fix may remove up to a quarter (at least 16 characters) and
# add up to as much again (at least 200); a docstring or annotations add, never remove.
FIX_SHRINK, FIX_GROW = (16, 0.25), (200, 1.0)
REWRITE_SHRINK, REWRITE_GROW = (8, 0.0), (1200, 1.0)
# A fix of a syntax error adds at most this many lines (a `}`, an `end`, a `pass`).
SYNTAX_FIX_ADDED_LINES = 3
# ... and changes at most this many characters (or a quarter of the lines it changes).
SYNTAX_FIX_CHARS = 24
# Lines this near the planned ones that come back in an answer mean it spilled over.
SPILL_LINES = 12
# Characters no code has: C0 controls but tab and line breaks, DEL, C1 controls, and
# the replacement character of bytes that were not text.
_CONTROL = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f\ufffd]")
_PROSE = re.compile(r"^(?:[A-Z][a-z']*,?|I)(?: [A-Za-z',()-]+){3,}[.:!]$")


def _implausible(code: str, old: str, plan: ActionPlan, text: str) -> str:
    """Why ``code`` cannot be a rewrite of ``old`` ("" when it can)."""
    if _CONTROL.search(code):
        return "Qwen's answer has control characters, not code"
    if any(line.lstrip().startswith("```") for line in code.split("\n")):
        return "Qwen's answer has a code fence inside the code"
    style = _indent_style(old) or _indent_style(text)
    used = _indent_style(code)
    if style and used and used != style:
        return f"Qwen's rewrite indents with {used}, the file with {style}"
    old_size, new_size = _code_size(old), _code_size(code)
    (shrink, shrink_part), (grow, grow_part) = (
        (FIX_SHRINK, FIX_GROW) if plan.task == "fix" else (REWRITE_SHRINK, REWRITE_GROW)
    )
    if new_size < old_size - max(shrink, old_size * shrink_part):
        return (
            f"Qwen's rewrite is much shorter than the code ({new_size} characters for {old_size})"
        )
    if new_size > old_size + max(grow, old_size * grow_part):
        return f"Qwen's rewrite is much longer than the code ({new_size} characters for {old_size})"
    return ""


def _spills(
    changed: list[str], lines: list[str], start: int, end: int, *, fuzzy: bool = False
) -> bool:
    """Whether the new lines repeat distinctive lines from just outside the planned ones
    (the model went on rewriting past its lines: applied, they would be there twice).
    ``fuzzy``: lines much like them count too (a syntax fix has no reason to write a
    `return 1;` next to the `return 0;` below it)."""
    around = [*lines[max(0, start - SPILL_LINES) : start], *lines[end + 1 : end + 1 + SPILL_LINES]]
    near = {line.strip() for line in around if len(line.strip()) >= 8}
    inside = {line.strip() for line in lines[start : end + 1]}
    for line in changed:
        text = line.strip()
        if text in inside or len(text) < 8:
            continue
        if text in near:
            return True
        if fuzzy and not any(SequenceMatcher(None, text, old).ratio() >= 0.75 for old in inside):
            if any(SequenceMatcher(None, text, other).ratio() >= 0.75 for other in near):
                return True
    return False


def _may_delete(old: str, plan: ActionPlan) -> bool:
    """A fix may delete its lines only when they are the stray word or bracket the error
    is about ("unexpected `end`")."""
    return plan.syntax and f"unexpected `{old.strip()}`" in plan.instruction


def _code_size(text: str) -> int:
    return sum(1 for ch in text if not ch.isspace())


def _indent_style(text: str) -> str:
    """ "tabs" or "spaces": how the indented lines of ``text`` start (most of them)."""
    tabs = spaces = 0
    for line in text.split("\n"):
        if line.startswith("\t"):
            tabs += 1
        elif line.startswith(" ") and line.strip():
            spaces += 1
    if tabs == spaces == 0:
        return ""
    return "tabs" if tabs > spaces else "spaces"


def minimal_change(old: Sequence[str], new: Sequence[str]) -> tuple[int, int, list[str]]:
    """The lines that differ: old lines ``[start, stop)`` become the returned lines."""
    start = 0
    while start < min(len(old), len(new)) and old[start] == new[start]:
        start += 1
    tail = 0
    while (
        tail < min(len(old), len(new)) - start
        and old[len(old) - 1 - tail] == new[len(new) - 1 - tail]
    ):
        tail += 1
    return start, len(old) - tail, list(new[start : len(new) - tail])


def _syntax_check(
    request: RewriteRequest,
    language: str,
    lines: list[str],
    new_file: list[str],
    new_lines: list[str],
) -> str:
    """Why the rewritten file is refused for its syntax ("" when it is not)."""
    plan = request.plan
    if len(request.text) <= WHOLE_FILE_CHECK_BYTES:
        old_text, new_text, offset = "\n".join(lines), "\n".join(new_file), 0
    else:  # a huge file: the lines rewritten only
        old_text = "\n".join(lines[plan.start_line : plan.end_line + 1])
        new_text, offset = "\n".join(new_lines), plan.start_line
    before = syntax_problems(old_text, language)
    after = syntax_problems(new_text, language)
    start = plan.start_line - offset
    old_end = plan.end_line - offset
    new_end = start + len(new_lines) - 1
    shift = new_end - old_end
    outside = Counter(
        (p.message, p.line + (shift if p.line > old_end else 0))
        for p in before
        if not start <= p.line <= old_end
    )
    inside = Counter(p.message for p in before if start <= p.line <= old_end)
    for problem in after:
        if start <= problem.line <= new_end:
            if plan.syntax or inside[problem.message] <= 0:
                return (
                    f"Qwen's rewrite does not parse ({problem.message} at line "
                    f"{problem.line + offset + 1})"
                )
            inside[problem.message] -= 1
        elif outside[(problem.message, problem.line)] > 0:
            outside[(problem.message, problem.line)] -= 1
        else:
            return (
                f"Qwen's rewrite adds a syntax error elsewhere ({problem.message} at line "
                f"{problem.line + offset + 1})"
            )
    # tree-sitter's Python grammar accepts a block that is not indented (a method
    # turned top-level function parses): Python's own parser is the judge.
    if language == "python" and not offset and _python_parses(old_text):
        if not _python_parses(new_text):
            return "Qwen's rewrite is not valid Python"
    return ""


def _fix_check(
    plan: ActionPlan,
    lines: list[str],
    first: int,
    final: int,
    changed: list[str],
    start: int,
    region: list[str],
    new_lines: list[str],
) -> str:
    """Why a fix's edit (old lines ``[first, final)`` become ``changed``) is refused."""
    if plan.syntax:
        if len(changed) - (final - first) > SYNTAX_FIX_ADDED_LINES:
            return (
                f"Qwen's fix adds {len(changed) - (final - first)} lines; a syntax fix adds "
                f"at most {SYNTAX_FIX_ADDED_LINES}"
            )
        old_text, new_text = "\n".join(lines[first:final]), "\n".join(changed)
        size = _changed_chars(old_text, new_text)
        allowed = max(SYNTAX_FIX_CHARS, len(old_text) // 4)
        if size > allowed:
            return (
                f"Qwen's fix changes {size} characters; a syntax fix changes at most {allowed} here"
            )
        old_code, new_code = "".join(old_text.split()), "".join(new_text.split())
        if changed and old_code and _changed_chars(old_code, new_code) > len(old_code) // 2:
            # (the tiny test model once "fixed" `return (w * h` as `ectionur`: it parses)
            return "Qwen's fix replaces the code instead of fixing it"
        # Only the lines of the error may change (new lines may follow its last).
        if (
            first < plan.focus_start
            or final > plan.focus_end + 1
            or (final == first and first > plan.focus_end + 1)
        ):
            return (
                f"Qwen's fix changes lines {first + 1}-{max(final, first + 1)}, away from the "
                f"error (lines {plan.focus_start + 1}-{plan.focus_end + 1})"
            )
        return ""
    line, char, end_line, end_char = plan.target
    if line < 0:
        return ""
    if final <= line or first > end_line:
        return "Qwen's fix does not change the code the problem is about"
    if first == line and final == line + 1 and end_line == line and len(changed) == 1:
        # One line changed: the change itself must touch the problem's characters.
        keep, stop, _ = minimal_change(lines[line], changed[0])  # characters, here
        if keep > end_char or stop < char:
            return "Qwen's fix does not change the code the problem is about"
    return ""


def _changed_chars(old: str, new: str) -> int:
    """How many characters differ between ``old`` and ``new``, between their common
    start and their common end (the longer side)."""
    keep = 0
    while keep < min(len(old), len(new)) and old[keep] == new[keep]:
        keep += 1
    back = 0
    while back < min(len(old), len(new)) - keep and old[-1 - back] == new[-1 - back]:
        back += 1
    return max(len(old), len(new)) - keep - back


def _has_prose(new_file: list[str], first: int, count: int, language: str) -> bool:
    """Whether a changed line reads as an English sentence outside any comment or string."""
    candidates = [row for row in range(first, first + count) if _PROSE.match(new_file[row].strip())]
    if not candidates:
        return False
    source = "\n".join(new_file).encode("utf-8", "surrogatepass")
    root = parse(source, language).root_node
    starts = [0]
    for line in new_file:
        starts.append(starts[-1] + len(line.encode("utf-8", "surrogatepass")) + 1)
    for row in candidates:
        line = new_file[row]
        column = len(line[: len(line) - len(line.lstrip())].encode("utf-8", "surrogatepass"))
        node: Node | None = root.descendant_for_byte_range(
            starts[row] + column, starts[row] + column + 1
        )
        while node is not None and not any(k in node.type for k in ("string", "comment")):
            node = node.parent
        if node is None:
            return True
    return False


def _has_prose_lines(changed: list[str]) -> bool:
    """For a language with no parser: a changed line that opens like a chat answer."""
    return any(
        re.match(r"(Here is|Here's|Sure|Certainly|I have|I've|The (fixed|corrected) )", line)
        for line in changed
    )


def _python_parses(text: str) -> bool:
    """Whether CPython's parser accepts ``text`` (parsed only, never run)."""
    try:
        ast.parse(text)
    except (SyntaxError, ValueError, MemoryError, RecursionError):
        return False
    return True


def syntax_errors(text: str, language: str) -> int:
    """ERROR and MISSING nodes in the tree-sitter parse of ``text``."""
    count = 0
    pending: list[Node] = [parse(text.encode("utf-8", "surrogatepass"), language).root_node]
    while pending:
        node = pending.pop()
        if node.is_error or node.is_missing:
            count += 1
        if node.has_error:
            pending.extend(node.children)
    return count


def _without_neighbours(code: str, lines: list[str], start: int, end: int) -> str:
    """``code`` without the lines that repeat those just above and below the planned
    ones (a model often writes the decorator above a function again): kept, they would
    be there twice."""
    new = code.split("\n")
    above = [line for line in lines[max(0, start - 8) : start]]
    while above and not above[-1].strip():
        above.pop()
    repeated = 0
    for k in range(min(len(above), len(new) - 1), 0, -1):
        if [x.rstrip() for x in new[:k]] == [x.rstrip() for x in above[-k:]]:
            repeated = k
            break
    new = new[repeated:]
    below = [line for line in lines[end + 1 : end + 9]]
    while below and not below[0].strip():
        below.pop(0)
    for k in range(min(len(below), len(new) - 1), 0, -1):
        if [x.rstrip() for x in new[-k:]] == [x.rstrip() for x in below[:k]]:
            new = new[:-k]
            break
    return "\n".join(new).rstrip()


def _closing_fence(text: str) -> int | None:
    """Where the answer ends: at the fence that closes the code. The answer starts inside
    a fence; a model that opens one again (```python) is not stopped by it."""
    start = 0
    if text.startswith("```"):
        newline = text.find("\n")
        if newline < 0:
            return None  # still being written: ```python, or ``` alone
        if not text[3:newline].strip():
            return 0  # a bare fence first: it closes the code (there is none)
        start = newline + 1  # ```python again: the code follows
    at = text.find("```", start)
    return at if at >= 0 else None


def _strip_answer(answer: str) -> str:
    """The code of an answer that started inside the fence (a repeated opening fence,
    CR line ends and blank lines at the ends dropped)."""
    text = answer.replace("\r\n", "\n")
    first, _, rest = text.partition("\n")
    if first.startswith("```"):
        text = rest
    lines = text.split("\n")
    while lines and not lines[0].strip():
        lines.pop(0)
    return "\n".join(lines).rstrip()


def _reindented(code: str, old: str) -> str | None:
    """``code`` moved to the indentation of ``old`` (a model often answers a method at
    column 0); None when some line of it would have less indentation than its first."""

    def indent(text: str) -> str:
        first = next((line for line in text.split("\n") if line.strip()), "")
        return first[: len(first) - len(first.lstrip())]

    have, want = indent(code), indent(old)
    if have == want:
        return code
    out = []
    for line in code.split("\n"):
        if not line.strip():
            out.append(line)
        elif line.startswith(have):
            out.append(want + line[len(have) :])
        else:
            return None
    return "\n".join(out)


def _lines(text: str) -> list[str]:
    """The lines of ``text`` without their line ends (LF or CRLF)."""
    return [line.removesuffix("\r") for line in text.split("\n")]


def _file_view(lines: list[str], start: int, end: int) -> str:
    """The file, or the lines around the region when it is long."""
    if len(lines) <= WHOLE_FILE_LINES:
        return "\n".join(lines)
    return "\n".join(lines[max(0, start - AROUND_LINES) : end + 1 + AROUND_LINES // 2])
