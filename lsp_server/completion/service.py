"""One completion, from document and position to suggestion: plain code, no LSP types.

The flow (docs/architecture.md): cursor window → multi-file context (a provider) →
prompt segments → the engine (`Engine.run`: tokens cached per segment, prefix reuse,
checkpoints, greedy decode) → post-processing → `CompletionResult`. Runs on the engine
thread.
"""

from __future__ import annotations

import dataclasses
import hashlib
import logging
import os
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field

from cachetools import LRUCache

from lsp_server.completion.document import (
    CHARS_PER_LINE,
    CursorWindow,
    FileSnapshot,
    capped_prefix,
    cursor_window,
    take_snapshot,
)
from lsp_server.completion.postprocess import StopRule, Suggestion, choose_mode, finish
from lsp_server.completion.prompt import (
    ContextBlock,
    Prompt,
    PromptFormat,
    PromptInputs,
    build_prompt,
    render_chat_frame,
)
from lsp_server.completion.stats import Stats, figures_line
from lsp_server.engine.types import NEVER, Cancelled, CancelToken, Engine, Figures, ModelInfo
from lsp_server.settings import Settings

log = logging.getLogger(__name__)

WINDOW_RESERVE = 512  # tokens kept free of the cursor window: the template, the instructions
# The live cursor window (the prompt's volatile tail) holds at most this many tokens: a
# jump, an edit above the cursor or the first keystroke after either evaluates it again,
# and with at most one appended block (context/sticky.py) that stays within 2,048 tokens.
# The file's snapshot in the stable part shows the lines it leaves out (docs/context.md).
LIVE_WINDOW_TOKENS = 1024


@dataclass(frozen=True, slots=True)
class CompletionRequest:
    path: str  # absolute file path (or the URI's path for unsaved buffers)
    text: str  # the document's current (unsaved) text
    line: int  # 0-based
    character: int  # 0-based, code points
    display_path: str = ""  # the path shown to the model (relative to the workspace)
    repo_name: str = ""
    language_id: str = ""  # the editor's language id (VS Code) or filetype (Neovim)
    # The document retrieval takes the text for, when not `path`: a notebook cell's
    # notebook file (the text is the notebook's cells joined).
    context_path: str = ""
    # A prefetch: the suggestion after the one shown, as if it were accepted (the log says
    # "prefetch" instead of "completion").
    speculative: bool = False


def _said(request: CompletionRequest) -> str:
    return "prefetch" if request.speculative else "completion"


@dataclass(frozen=True, slots=True)
class ContextQuery:
    path: str
    text: str
    line: int
    character: int
    budget_tokens: int
    format: PromptFormat
    # The lines the prompt shows of this document (first, last exclusive): retrieval
    # leaves them out. -1: the settings' prefix and suffix windows.
    window_start: int = -1
    window_end: int = -1
    language_id: str = ""  # the editor's language id: a document whose path tells none
    # A background refresh of the prompt's stable part (idle time): the provider may pack
    # afresh, and keeps the result pending until `commit(path)` (docs/context.md).
    refresh: bool = False


# The multi-file context: `(query, count_tokens) -> blocks`. A provider with a
# `commit(path)` method is told when a refresh's blocks were evaluated.
ContextProvider = Callable[[ContextQuery, Callable[[str], int]], Sequence[ContextBlock]]

SNAPSHOT_SHARE = 0.5  # of the context budget, at most, for the current file's snapshot


@dataclass(slots=True)
class CompletionResult:
    suggestion: Suggestion | None
    figures: Figures
    format: PromptFormat
    outcome: str  # ok | empty | cache
    raw: str = ""
    total_ms: float = 0.0
    prompt_tokens: list[int] | None = None  # the prompt, when it was evaluated (benchmarks)
    schedule: list[int] | None = None  # its batch boundaries (tests reproduce the state)
    context_sources: list[str] = field(default_factory=list)  # what the context showed


def resolve_format(setting: str, info: ModelInfo) -> PromptFormat:
    """`auto`: FIM when the vocabulary has the FIM tokens and the model's name says it was
    trained for it (a coder model); the chat template otherwise."""
    if setting == "fim":
        if info.has_fim_tokens:
            return "fim"
        log.warning("completion.promptFormat is fim but the model has no FIM tokens: using chat")
        return "chat"
    if setting == "chat":
        return "chat"
    return "fim" if info.has_fim_tokens and info.fim_trained else "chat"


class Completer:
    """Builds prompts and runs them through one engine; call only from its owner thread."""

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
        self.context = context
        self.stats = stats or Stats()
        self.format: PromptFormat = resolve_format(settings.completion.prompt_format, engine.info)
        info = engine.info
        self._frame = render_chat_frame(info.chat_template, info.bos, info.eos)
        self._suggestions: LRUCache[bytes, tuple[Suggestion | None, str]] = LRUCache(256)
        # path -> (stable key, prefix, first line of the prefix window, suggestion shown)
        self._last: dict[str, tuple[bytes, str, int, Suggestion]] = {}
        self.last_context: tuple[ContextBlock, ...] = ()
        # Per document, the snapshot its prompts show, and a refresh's until evaluated.
        self._snapshots: LRUCache[str, FileSnapshot | None] = LRUCache(32)
        self._pending: dict[str, FileSnapshot | None] = {}

    def update_settings(self, settings: Settings) -> None:
        self.settings = settings
        self.format = resolve_format(settings.completion.prompt_format, self.engine.info)
        self._suggestions.clear()

    # ---- building ---------------------------------------------------------------------

    def count_tokens(self, text: str) -> int:
        return self.engine.count_tokens(text)

    def window(self, request: CompletionRequest) -> CursorWindow:
        """The cursor window, cut down when its lines would not fit the context or
        `LIVE_WINDOW_TOKENS` (long, dense lines: 120 of them can be 3,000 tokens)."""
        c = self.settings.completion
        window = cursor_window(
            request.text,
            request.line,
            request.character,
            prefix_lines=c.prefix_lines,
            suffix_lines=c.suffix_lines,
        )
        room = min(self.engine.n_ctx - c.max_tokens - WINDOW_RESERVE, LIVE_WINDOW_TOKENS)
        prefix, suffix = self.count_tokens(window.prefix), self.count_tokens(window.suffix)
        if prefix + suffix <= room:
            return window
        suffix_room = min(suffix, room // 4)
        kept_prefix = _stable_tail(
            window.prefix, room - suffix_room, self.count_tokens, c.prefix_lines * CHARS_PER_LINE
        )
        kept_suffix = _keep(window.suffix, suffix_room, self.count_tokens, tail=False)
        log.debug("cursor window cut to %d tokens", room)
        return dataclasses.replace(
            window,
            prefix=kept_prefix,
            suffix=kept_suffix,
            prefix_start_line=window.line - kept_prefix.count("\n"),
            suffix_end_line=window.line + 1 + kept_suffix.count("\n"),
        )

    def build(
        self,
        request: CompletionRequest,
        window: CursorWindow | None = None,
        *,
        refresh: bool = False,
    ) -> Prompt:
        """The prompt for `request` (context included when a provider is set).

        The stable part (the kept context and the file's snapshot) stays as the document's
        last prompts had it; `refresh` (idle time) takes them afresh, pending until
        `commit`. The context blocks used are kept in `last_context` (their sources go
        to stats).
        """
        window = window or self.window(request)
        reserve = (
            self.settings.completion.max_tokens
            + self.count_tokens(window.prefix)
            + self.count_tokens(window.suffix)
            + 256
        )
        budget = min(self.settings.context.budget_tokens, self.engine.n_ctx - reserve)
        snapshot = self._snapshot(request, window, budget, refresh)
        shown = (window.prefix_start_line, window.suffix_end_line)
        if snapshot is not None:
            budget -= snapshot.tokens
            shown = (
                min(shown[0], snapshot.first_line),
                max(shown[1], snapshot.end_line),
            )
        blocks: Sequence[ContextBlock] = ()
        if self.context is not None and self.settings.context.enabled and budget > 0:
            query = ContextQuery(
                request.context_path or request.path,
                request.text,
                request.line,
                request.character,
                budget,
                self.format,
                shown[0],
                shown[1],
                request.language_id,
                refresh=refresh,
            )
            try:
                blocks = self.context(query, self.count_tokens)
            except Exception:  # context is an enhancement: never lose the completion
                log.exception("gathering context failed; completing without it")
        self.last_context = tuple(blocks)
        inputs = PromptInputs(
            window=window,
            path=request.display_path or os.path.basename(request.path),
            repo_name=request.repo_name,
            context=tuple(blocks),
            language_id=request.language_id,
            snapshot=snapshot,
        )
        return build_prompt(self.format, inputs, self._frame)

    def _snapshot(
        self, request: CompletionRequest, window: CursorWindow, budget: int, refresh: bool
    ) -> FileSnapshot | None:
        """The document's snapshot for this prompt: the kept one on a request (taken now
        on the first), a new one on a refresh when the text or the place changed."""
        path = request.path
        known = path in self._snapshots
        kept = self._snapshots.get(path)
        fits = kept is None or kept.tokens <= budget
        if not refresh and known and fits:
            return kept
        text = request.text
        lines = text.count("\n") + 1
        whole = (
            window.prefix_start_line == 0
            and window.suffix_end_line >= lines
            # (not cut inside its lines: one line of megabytes is not all in the window)
            and len(window.prefix) + len(window.suffix) + lines >= len(text)
        )
        if budget <= 0 or whole:
            snapshot = None  # the cursor window shows the whole file
        elif (
            kept is not None
            and fits
            and kept.first_line <= request.line < kept.end_line
            and _lines_of(text, kept.first_line, kept.end_line) == kept.text
            and kept.lines == lines
        ):
            snapshot = kept  # unchanged: the refresh re-evaluates nothing
        else:
            share = int(budget * SNAPSHOT_SHARE)
            snapshot = take_snapshot(
                text, request.line, share, self.count_tokens, request.character
            )
        if refresh:
            self._pending[path] = snapshot
        else:
            self._snapshots[path] = snapshot
        return snapshot

    def commit(self, path: str, context_path: str = "") -> None:
        """A refresh's prompt for `path` was evaluated: requests use its stable part
        (`context_path`: the document the context was asked for, when not `path`)."""
        if path in self._pending:
            self._snapshots[path] = self._pending.pop(path)
        commit = getattr(self.context, "commit", None)
        if commit is not None:
            commit(context_path or path)

    # ---- running ----------------------------------------------------------------------

    def complete(self, request: CompletionRequest, cancel: CancelToken = NEVER) -> CompletionResult:
        """The suggestion at the request's position (None when there is nothing to add)."""
        started = time.perf_counter()
        window = self.window(request)
        mode = choose_mode(window, self.settings.completion.multiline)
        prompt = self.build(request, window)
        stable_key = _digest(s.text for s in prompt.segments if s.name != "prefix")
        key = _digest([stable_key.hex(), window.prefix, mode])
        cached = self._suggestions.get(key)
        typed = (
            None if cached is not None else self._typed_through(request.path, stable_key, window)
        )
        if cached is not None or typed is not None:
            suggestion = cached[0] if cached is not None else typed
            result = CompletionResult(suggestion, Figures(), self.format, "cache")
            result.total_ms = (time.perf_counter() - started) * 1000
            self._remember(request.path, stable_key, window, suggestion)
            self.stats.record(
                result.figures,
                kind="completion",
                path=request.path,
                total_ms=result.total_ms,
                outcome="cache",
            )
            log.info(
                "%s %s:%d:%d from cache",
                _said(request),
                os.path.basename(request.path),
                request.line + 1,
                request.character + 1,
            )
            return result
        rule = StopRule(mode, window.next_nonempty_line)
        try:
            generation = self.engine.run(
                prompt,
                max_tokens=self.settings.completion.max_tokens,
                rule=rule.check,
                cancel=cancel,
            )
        except Cancelled as exc:
            self.stats.record(
                exc.figures or Figures(),
                kind="completion",
                path=request.path,
                total_ms=(time.perf_counter() - started) * 1000,
                outcome="cancelled",
            )
            # The work a cancelled request did stays (its tokens are in the sequence the
            # next request reuses): the log says what it cost, where the engine told
            # (an engine in another process does not).
            log.info(
                "%s %s:%d:%d cancelled in %.0f ms%s",
                _said(request),
                os.path.basename(request.path),
                request.line + 1,
                request.character + 1,
                (time.perf_counter() - started) * 1000,
                f" ({figures_line(exc.figures)})" if exc.figures else "",
            )
            raise
        suggestion = finish(generation.text, window, mode)
        outcome = "ok" if suggestion else "empty"
        result = CompletionResult(
            suggestion,
            generation.figures,
            self.format,
            outcome,
            raw=generation.text,
            prompt_tokens=generation.prompt_tokens or None,
            schedule=generation.schedule,
            context_sources=[src for block in self.last_context for src in block.sources],
        )
        result.total_ms = (time.perf_counter() - started) * 1000
        self._suggestions[key] = (suggestion, generation.text)
        self._remember(request.path, stable_key, window, suggestion)
        self.stats.record(
            generation.figures,
            kind="completion",
            path=request.path,
            total_ms=result.total_ms,
            outcome=outcome,
            context=result.context_sources,
        )
        log.info(
            "%s %s:%d:%d %s in %.0f ms (%s; stop %s)",
            _said(request),
            os.path.basename(request.path),
            request.line + 1,
            request.character + 1,
            f"{len(suggestion.text)} chars" if suggestion else "empty",
            result.total_ms,
            figures_line(generation.figures),
            generation.stop_reason,
        )
        return result

    def warm(self, request: CompletionRequest, cancel: CancelToken = NEVER) -> Figures:
        """Refresh the stable part of `request`'s prompt and evaluate it up to its cursor
        line (idle time; the engine works beside the state requests use). Once evaluated,
        requests use the refreshed snapshot and context; a request that preempts it keeps
        the old ones, whose state the engine still holds."""
        try:
            figures = self.engine.warm(self.build(request, refresh=True), cancel)
        except BaseException:
            self._pending.pop(request.path, None)
            raise
        self.commit(request.path, request.context_path)
        if not figures.evaluated_tokens and not figures.reused_tokens:
            return figures
        self.stats.record(
            figures, kind="warmup", path=request.path, total_ms=figures.prefill_ms, outcome="ok"
        )
        log.debug("warm-up of %s: %s", os.path.basename(request.path), figures_line(figures))
        return figures

    def _remember(
        self, path: str, stable_key: bytes, window: CursorWindow, suggestion: Suggestion | None
    ) -> None:
        if suggestion is None:
            self._last.pop(path, None)
        else:
            self._last[path] = (stable_key, window.prefix, window.prefix_start_line, suggestion)

    def _typed_through(
        self, path: str, stable_key: bytes, window: CursorWindow
    ) -> Suggestion | None:
        """When the user has typed (or accepted) the start of the suggestion shown, the
        rest of it, also across line breaks: accepting a line keeps the next ones."""
        last = self._last.get(path)
        if last is None:
            return None
        key, old_prefix, old_start, shown = last
        if key != stable_key or shown.end_character != shown.character:
            return None
        # Typing lines can move the start of the prefix window down (by its stride).
        typed = _typed_since(old_prefix, window.prefix, window.prefix_start_line - old_start)
        if not typed or not shown.text.startswith(typed):
            return None
        rest = shown.text[len(typed) :]
        if not rest.strip():
            return None
        return Suggestion(rest, window.line, window.character, window.character)


def _lines_of(text: str, first: int, end: int) -> str:
    """Lines first..end-1 of `text`, joined."""
    return "\n".join(text.split("\n")[first:end])


def _typed_since(old: str, new: str, dropped_lines: int) -> str | None:
    """What was added at the end of the prefix ``old`` to give ``new``, whose window
    starts ``dropped_lines`` lines further down; None when anything else changed."""
    if dropped_lines < 0:
        return None
    start = 0
    for _ in range(dropped_lines):
        start = old.find("\n", start) + 1
        if start == 0:
            return None
    kept = old[start:]
    return new[len(kept) :] if new.startswith(kept) else None


def _stable_tail(text: str, budget: int, count: Callable[[str], int], cap: int) -> str:
    """The end of ``text`` within ``budget`` tokens, cut where typing at its end does not
    move the cut: the largest of ``cap``, ``cap / 2``, ``cap / 4`` ... characters that
    fits, each cut in quarter steps (``capped_prefix``). A cut that moved with the
    length (a fifth at a time) changed the prompt's start at nearly every keystroke."""
    if count(text) <= budget:
        return text
    while cap >= len(text) and cap > 1:
        cap //= 2
    while cap >= 64:
        kept, _ = capped_prefix(text, cap)
        if count(kept) <= budget:
            return kept
        cap //= 2
    return _keep(text, budget, count, tail=True)


def _keep(text: str, budget: int, count: Callable[[str], int], *, tail: bool) -> str:
    """The last (`tail`) or first lines of `text` within `budget` tokens; a single line
    too long for it is cut in characters."""
    if budget <= 0:
        return ""
    lines = text.split("\n")
    keep = len(lines)
    while keep > 1:
        part = "\n".join(lines[-keep:] if tail else lines[:keep])
        if count(part) <= budget:
            return part
        keep = max(1, min(keep - 1, int(keep * 0.8)))
    part = lines[-1] if tail else lines[0]
    while part and count(part) > budget:
        cut = max(1, len(part) // 5)
        part = part[cut:] if tail else part[:-cut]
    return part


def _digest(parts: Iterable[str]) -> bytes:
    h = hashlib.blake2b(digest_size=16)
    for part in parts:
        h.update(part.encode("utf-8", "surrogatepass"))
        h.update(b"\x00")
    return h.digest()
