"""Build the completion prompt as an ordered list of segments.

Order is the whole point (docs/engine.md): parts that change least come first, so
that while the user types the prompt only grows at its end and the engine evaluates
just the new tokens. Each segment says which special tokens its text may contain:
template text is parsed for control tokens, the user's code never is (a file that
contains "<|im_end|>" must not end the prompt).

Two formats:
- ``chat`` (Qwen3.6 and other instruct models): the GGUF's chat template with thinking
  off; the user turn carries the repository context, the file's path and the code
  after the cursor; the assistant turn starts with a code fence and the code before the
  cursor, so the model simply continues it and typing appends.
- ``fim`` (FIM-trained models such as Qwen2.5-Coder):
  ``<|repo_name|>…<|file_sep|>path\\ncode…<|file_sep|>path\\n<|fim_prefix|>…<|fim_suffix|>…<|fim_middle|>``.
"""

from __future__ import annotations

import functools
import logging
import re
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from types import FrameType
from typing import Any

import jinja2
from jinja2.sandbox import ImmutableSandboxedEnvironment
from jinja2.utils import Namespace

from context.languages import fence_tag
from context.pack import plain_text
from lsp_server.completion.document import CursorWindow, FileSnapshot
from lsp_server.engine.types import ALL_SPECIALS, Prompt, PromptFormat, Segment

log = logging.getLogger(__name__)


FIM_PREFIX, FIM_SUFFIX, FIM_MIDDLE = "<|fim_prefix|>", "<|fim_suffix|>", "<|fim_middle|>"
FILE_SEP, REPO_NAME = "<|file_sep|>", "<|repo_name|>"

SYSTEM_PROMPT = (
    "You are a code completion engine inside a code editor. You continue the user's code "
    "at the cursor. Reply with code only: no explanations, no markdown outside the code "
    "block. Never repeat the code that comes after the cursor."
)

# Used when a GGUF carries no chat template: Qwen's ChatML with thinking off.
CHATML_TEMPLATE = (
    "{% for m in messages %}<|im_start|>{{ m.role }}\n{{ m.content }}<|im_end|>\n{% endfor %}"
    "{% if add_generation_prompt %}<|im_start|>assistant\n"
    "{% if enable_thinking is defined and not enable_thinking %}<think>\n\n</think>\n\n{% endif %}"
    "{% endif %}"
)

_USER_MARK = "\x00qwen-lsp-user\x00"


def language_of(path: str) -> str:
    """The code-fence tag of a file by its extension, from the language table
    (``context/lang/``); "" when it is not there."""
    return fence_tag(path)


# Editor language ids that are not the usual code-fence tag.
_FENCE_ALIASES = {"shellscript": "bash", "sh": "bash", "zsh": "bash", "text": "", "plaintext": ""}
_FENCE_TAG = re.compile(r"[a-z0-9][a-z0-9_+#.-]{0,31}")


def fence_language(path: str, language_id: str = "") -> str:
    """The tag of the code fences around the file's code: from its extension, else from the
    editor's language id (a Dockerfile, a `.vue` file), when that is a plain tag."""
    known = language_of(path)
    if known or not language_id:
        return known
    tag = language_id.lower()
    tag = _FENCE_ALIASES.get(tag, tag)
    return tag if _FENCE_TAG.fullmatch(tag) else ""


@dataclass(frozen=True, slots=True)
class ContextBlock:
    """A rendered multi-file context block (from context/pack.py), oldest-changing first."""

    text: str
    specials: tuple[str, ...] = ()
    sources: tuple[str, ...] = ()  # what it shows: "path:first-last (reason)", for stats and logs
    # Added by a request to a kept context (context/sticky.py): it goes after the file's
    # snapshot, so that adding it re-evaluates nothing already evaluated.
    appended: bool = False


@dataclass(frozen=True)
class PromptInputs:
    window: CursorWindow
    path: str  # path shown to the model (relative to the workspace when possible)
    repo_name: str = ""
    context: Sequence[ContextBlock] = field(default_factory=tuple)
    language_id: str = ""  # the editor's language id of the document, when known
    snapshot: FileSnapshot | None = None  # the current file, in the prompt's stable part


# A chat template is the model file's code: the sandbox stops it from doing anything but
# work, and these bound the work (`{% for i in range(100000) %}` nested kept the model
# "loading" forever; `{% set a = 'x' * 1500000000 %}` took 5.8 GB).
TEMPLATE_TIME_S = 2.0
TEMPLATE_MAX_CHARS = 1 << 20  # of any string or list it makes, and of what it renders


class TemplateTooCostly(Exception):
    """A chat template over the bounds of time or size."""


class _BoundedEnvironment(ImmutableSandboxedEnvironment):
    """The sandbox, with the size of what one operation makes bounded."""

    intercepted_binops = frozenset(["*", "**", "+"])

    def __init__(self, **options: Any) -> None:
        super().__init__(**options)
        # Filters are called directly, not through `call`: `'x'|center(10**9)`.
        self.filters = {name: _checked(f) for name, f in self.filters.items()}

    def call_binop(self, context: Any, operator: str, left: Any, right: Any) -> Any:
        if operator == "**" and isinstance(right, int) and abs(right) > 64:
            raise TemplateTooCostly(f"an exponent of {right}")
        if operator == "*":
            for seq, times in ((left, right), (right, left)):
                if isinstance(seq, (str, list, tuple)) and isinstance(times, int):
                    if len(seq) * times > TEMPLATE_MAX_CHARS:
                        raise TemplateTooCostly(f"a value of {len(seq) * times:,} items")
        if operator == "+" and isinstance(left, (str, list, tuple)):
            if (
                isinstance(right, (str, list, tuple))
                and len(left) + len(right) > TEMPLATE_MAX_CHARS
            ):
                raise TemplateTooCostly("a value over the size bound")
        return super().call_binop(context, operator, left, right)

    def call(self, __context: Any, __obj: Any, *args: Any, **kwargs: Any) -> Any:
        _check_arguments(args, kwargs)
        return super().call(__context, __obj, *args, **kwargs)


def _check_arguments(args: Sequence[Any], kwargs: dict[str, Any]) -> None:
    for value in (*args, *kwargs.values()):
        if (
            isinstance(value, int)
            and not isinstance(value, bool)
            and abs(value) > TEMPLATE_MAX_CHARS
        ):
            raise TemplateTooCostly(f"an argument of {value:,}")


def _checked(function: Any) -> Any:
    @functools.wraps(function)
    def checked(*args: Any, **kwargs: Any) -> Any:
        _check_arguments(args, kwargs)
        return function(*args, **kwargs)

    return checked


def _too_big(value: Any) -> bool:
    if isinstance(value, (str, list, tuple, dict)):
        return len(value) > TEMPLATE_MAX_CHARS
    if isinstance(value, Namespace):
        held = getattr(value, "_Namespace__attrs", {})
        return any(_too_big(v) for v in held.values() if not isinstance(v, Namespace))
    return False


def _render_bounded(env: ImmutableSandboxedEnvironment, source: str, **values: Any) -> str:
    """Render with a deadline: the template's own lines are traced (only its code: the
    compiled template's file name is "<template>") and the trace raises past it."""
    deadline = time.monotonic() + TEMPLATE_TIME_S
    lines = [0]

    def local(frame: FrameType, event: str, arg: Any) -> Any:
        lines[0] += 1
        if lines[0] % 512 == 0 and time.monotonic() > deadline:
            raise TemplateTooCostly(f"rendering took over {TEMPLATE_TIME_S:g} s")
        # `~` (concatenation) cannot be intercepted: the values the template holds are
        # measured instead, line by line (a doubling loop stops one step past the bound).
        for value in frame.f_locals.values():
            if _too_big(value):
                raise TemplateTooCostly("a value over the size bound")
        return local

    def calls(frame: FrameType, event: str, arg: Any) -> Any:
        return local if frame.f_code.co_filename == "<template>" else None

    template = env.from_string(source)
    previous = sys.gettrace()
    sys.settrace(calls)
    try:
        rendered = template.render(**values)
    finally:
        sys.settrace(previous)
    if len(rendered) > TEMPLATE_MAX_CHARS:
        raise TemplateTooCostly(f"{len(rendered):,} characters rendered")
    return rendered


def render_chat_frame(
    template: str | None, bos: str = "", eos: str = "", *, system: str = SYSTEM_PROMPT
) -> tuple[str, str]:
    """Render the chat template around an empty user turn, thinking off.

    Returns the text before the user's content and the text after it, up to the start of
    the assistant's answer. A template that fails, or goes over the bounds of time
    (``TEMPLATE_TIME_S``) or size (``TEMPLATE_MAX_CHARS``), gives ChatML (Qwen's own).
    """
    env = _BoundedEnvironment(trim_blocks=True, lstrip_blocks=True)

    def raise_exception(message: str) -> None:
        raise jinja2.TemplateError(message)

    env.globals["raise_exception"] = raise_exception
    source = template or CHATML_TEMPLATE
    try:
        rendered = _render_bounded(
            env,
            source,
            messages=[
                {"role": "system", "content": system},
                {"role": "user", "content": _USER_MARK},
            ],
            add_generation_prompt=True,
            enable_thinking=False,
            bos_token=bos,
            eos_token=eos,
            tools=None,
        )
    except Exception as exc:  # a template may fail in any way; ChatML is Qwen's own format
        if template is None:
            raise
        log.warning("the model's chat template cannot be used (%s); using ChatML", exc)
        return render_chat_frame(None, bos, eos, system=system)
    if rendered.count(_USER_MARK) != 1:
        if template is None:
            raise ValueError("the chat template does not render the user's message")
        return render_chat_frame(None, bos, eos, system=system)
    head, tail = rendered.split(_USER_MARK)
    if "<think>" in source and "<think>" not in tail:
        # A thinking template that ignores enable_thinking: close the thought ourselves.
        tail += "<think>\n\n</think>\n\n"
    return head, tail


def _context_segments(blocks: Sequence[ContextBlock], name: str) -> list[Segment]:
    # One segment per block, each checkpointed: a change in a later (more volatile) block
    # then resumes from the end of the one before it.
    return [
        Segment(f"{name}-{i}", block.text, block.specials, checkpoint=True)
        for i, block in enumerate(blocks)
    ]


def _snapshot_place(snapshot: FileSnapshot) -> str:
    """Which part of the file the snapshot is, for its heading ("" for the whole file)."""
    first, end, count = snapshot.first_line + 1, snapshot.end_line, snapshot.lines
    if snapshot.partial:
        lines = f"line {first}" if end == first else f"lines {first}-{end}"
        return f" (a part of {lines} of {count})"
    if first == 1 and end >= count:
        return ""
    return f" (lines {first}-{end} of {count})"


def build_chat_prompt(inputs: PromptInputs, frame: tuple[str, str]) -> Prompt:
    """The chat prompt. Stable part: the system turn, the kept context, the file's
    snapshot, the blocks appended since; volatile tail: the code after the cursor, the
    instructions, and the code before the cursor as the start of the answer."""
    head, tail = frame
    window = inputs.window
    lang = fence_language(inputs.path, inputs.language_id)
    kept = [b for b in inputs.context if not b.appended]
    appended = [b for b in inputs.context if b.appended]
    segments = [Segment("head", head, ALL_SPECIALS)]
    if kept:
        segments.append(Segment("context-intro", "Code from other files of the repository:\n\n"))
        segments.extend(_context_segments(kept, "context"))
    snapshot = inputs.snapshot
    if snapshot is not None:
        where = _snapshot_place(snapshot)
        segments.append(
            Segment(
                "snapshot",
                f"The file I am editing, `{inputs.path}`{where}, as it was a moment ago:\n"
                f"```{lang}\n{snapshot.text}\n```\n\n",
                checkpoint=True,
            )
        )
    if appended:
        segments.append(Segment("appended-intro", "More code from the repository:\n\n"))
        segments.extend(_context_segments(appended, "appended"))
    suffix_note = (
        f"The code that follows the cursor:\n```{lang}\n{window.suffix}\n```\n"
        if window.suffix.strip()
        else "Nothing follows the cursor.\n"
    )
    now = "As it is now, with the cursor: " if snapshot is not None else ""
    segments.append(
        Segment(
            "suffix",
            f"I am editing `{inputs.path}`. {now}{suffix_note}"
            "Continue my code from where your answer below stops. Write only the code that "
            "goes at the cursor, then close the code block.",
        )
    )
    segments.append(Segment("answer-start", f"{tail}```{lang}\n", ALL_SPECIALS, checkpoint=True))
    segments.append(Segment("prefix", window.prefix, line_checkpoints=True))
    return Prompt("chat", tuple(segments), stop=("```",))


def build_fim_prompt(inputs: PromptInputs) -> Prompt:
    """The FIM prompt: repository blocks (kept context, the file's snapshot, appended
    blocks), then the live window around the cursor as prefix and suffix."""
    window = inputs.window
    kept = [b for b in inputs.context if not b.appended]
    appended = [b for b in inputs.context if b.appended]
    repo = bool(inputs.repo_name or inputs.context or inputs.snapshot)
    path = plain_text(inputs.path)  # a file name is no place for a control token
    segments: list[Segment] = []
    if repo:
        segments.append(
            Segment("repo", f"{REPO_NAME}{plain_text(inputs.repo_name)}\n", (REPO_NAME,))
        )
    segments.extend(_context_segments(kept, "context"))
    if inputs.snapshot is not None:
        segments.append(Segment("snapshot-head", f"{FILE_SEP}{path}\n", (FILE_SEP,)))
        segments.append(Segment("snapshot", f"{inputs.snapshot.text}\n", checkpoint=True))
    segments.extend(_context_segments(appended, "appended"))
    if segments:
        segments[-1] = _with_checkpoint(segments[-1])
    header = f"{FILE_SEP}{path}\n" if repo else ""
    segments.append(Segment("fim-prefix-head", header + FIM_PREFIX, (FILE_SEP, FIM_PREFIX)))
    segments.append(Segment("prefix", window.prefix, line_checkpoints=True))
    segments.append(Segment("fim-suffix-head", FIM_SUFFIX, (FIM_SUFFIX,)))
    segments.append(Segment("suffix", window.suffix))
    segments.append(Segment("fim-middle", FIM_MIDDLE, (FIM_MIDDLE,)))
    return Prompt("fim", tuple(segments))


def _with_checkpoint(segment: Segment) -> Segment:
    return Segment(segment.name, segment.text, segment.specials, True, segment.line_checkpoints)


def build_prompt(
    fmt: PromptFormat, inputs: PromptInputs, chat_frame: tuple[str, str] | None = None
) -> Prompt:
    if fmt == "fim":
        return build_fim_prompt(inputs)
    return build_chat_prompt(inputs, chat_frame or render_chat_frame(None))
