"""Run one code action: ask the model to rewrite the planned lines, check what comes back.

The prompt is the model's chat template (thinking off) with an editing instruction, the
multi-file context the completions use, the file and the lines to rewrite; the answer
starts inside a code fence, so the model writes code and closes the fence. What it
returns replaces exactly the planned lines, and only when it is whole (not cut by the
token or time limit), differs from them, and does not add syntax errors to the file: a
rejected rewrite changes nothing and says why.
"""

from __future__ import annotations

import ast
import logging
import time
from collections.abc import Sequence
from dataclasses import dataclass

from tree_sitter import Node

from context.languages import has_grammar, language_of_document
from context.symbols import parse
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
    """The new text of the planned lines (None: nothing to change, see ``message``)."""

    new_text: str | None
    message: str
    figures: Figures
    total_ms: float = 0.0


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
    """Check the model's answer and turn it into the new text of the planned lines.

    The blank lines at the start and end of the planned lines are kept as they are (the
    model's answer is trimmed of its own), so a rewrite never glues what it touches to
    its neighbours; a file with CRLF line ends gets CRLF in the new text too.
    """
    plan = request.plan
    if stop_reason in ("length", "time"):
        limit = "codeActions.maxTokens" if stop_reason == "length" else "codeActions.timeBudgetMs"
        return RewriteResult(
            None, f"the rewrite was cut by {limit}: nothing was changed", Figures()
        )
    code = _strip_answer(answer)
    lines = _lines(request.text)
    region = lines[plan.start_line : plan.end_line + 1]
    lead = next((i for i, line in enumerate(region) if line.strip()), len(region))
    trail = next((i for i, line in enumerate(reversed(region)) if line.strip()), 0)
    if lead == len(region):  # only blank lines: the code takes their place
        lead = trail = 0
    code = _without_neighbours(code, lines, plan.start_line + lead, plan.end_line - trail)
    old = "\n".join(region[lead : len(region) - trail])
    if not code.strip():
        return RewriteResult(None, "Qwen returned no code: nothing was changed", Figures())
    moved = _reindented(code, old)
    if moved is None:
        return RewriteResult(
            None, "Qwen's rewrite is not indented like the code: nothing was changed", Figures()
        )
    code = moved
    if code.rstrip() == old.rstrip():
        return RewriteResult(None, "Qwen suggested no change", Figures())
    new_region = "\n".join([""] * lead + [code] + [""] * trail)
    language = language_of_document(request.path, request.language_id)
    if language is not None and has_grammar(language):  # (no check for text languages)
        if len(request.text) <= WHOLE_FILE_CHECK_BYTES:
            old_scope = "\n".join(lines)
            new_scope = "\n".join(
                [*lines[: plan.start_line], new_region, *lines[plan.end_line + 1 :]]
            )
        else:
            old_scope, new_scope = "\n".join(region), new_region
        before, after = syntax_errors(old_scope, language), syntax_errors(new_scope, language)
        if after > before:
            return RewriteResult(
                None,
                f"Qwen's rewrite does not parse ({after} syntax errors, {before} before): "
                "nothing was changed",
                Figures(),
            )
        # tree-sitter's Python grammar accepts a block that is not indented (a method
        # turned top-level function parses): Python's own parser is the judge.
        whole_file = len(request.text) <= WHOLE_FILE_CHECK_BYTES
        if language == "python" and whole_file and _python_parses(old_scope):
            if not _python_parses(new_scope):
                return RewriteResult(
                    None, "Qwen's rewrite is not valid Python: nothing was changed", Figures()
                )
    if "\r\n" in request.text:
        new_region = new_region.replace("\n", "\r\n")
    message = f"rewrote lines {plan.start_line + 1}-{plan.end_line + 1}"
    return RewriteResult(new_region, message, Figures())


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
