"""What every engine shares, without loading llama.cpp: errors, cancellation, the
model's description, a request's figures, a generation, the stop rule, and `Engine`,
the protocol that the in-process engine (`llama.py`) and the serving-engine client
(`remote.py`) both implement, so that no caller asks which one it holds.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from context.types import PromptFormat  # "fim" | "chat", defined once there

# A segment whose `specials` is this parses every control token (template text).
ALL_SPECIALS = ("*",)


class EngineError(RuntimeError):
    """The engine failed; the message is for the user."""


class ModelLoadError(EngineError):
    """The model file could not be loaded."""


class EngineUnreachable(ModelLoadError):
    """An engine in another process cannot be reached now (not running, the network
    gone): worth another try in a few seconds."""


class Cancelled(Exception):
    """The request was cancelled, superseded or preempted.

    `figures` holds what it cost until then (tokens evaluated before the cancel stay
    in the context and are reused by the next request).
    """

    figures: Figures | None = None


class CancelToken:
    """Checked between batches and tokens; set from any thread."""

    def __init__(self, deadline: float | None = None, priority: int = 0) -> None:
        self._cancelled = False
        self.reason = ""
        self.deadline = deadline
        # The job's priority (engine/worker.py's `Priority`): what an engine that queues
        # work of several servers (the shared engine process) orders them by.
        self.priority = priority

    def cancel(self, reason: str = "cancelled") -> None:
        if not self._cancelled:
            self.reason = reason
            self._cancelled = True

    @property
    def cancelled(self) -> bool:
        return self._cancelled

    def check(self) -> None:
        if self._cancelled:
            raise Cancelled(self.reason)


NEVER = CancelToken()


@dataclass(frozen=True, slots=True)
class EngineConfig:
    model_path: str
    n_ctx: int = 32768
    n_gpu_layers: int = -1
    flash_attention: str = "auto"  # auto | on | off
    kv_cache_type: str = "f16"  # f16 | q8_0
    n_threads: int = 0  # 0 = all physical cores
    n_batch: int = 512
    checkpoint_bytes: int = 2048 << 20
    slots: int = 2  # sequences kept side by side (switching files and back costs nothing)
    checkpoint_interval: int = 256  # min tokens between line checkpoints in a segment


@dataclass(frozen=True, slots=True)
class ModelInfo:
    path: str
    architecture: str
    name: str
    n_ctx_train: int
    n_ctx: int
    n_vocab: int
    hybrid: bool  # recurrent layers: needs checkpoints to roll back
    has_fim_tokens: bool
    fim_trained: bool  # the metadata suggests a FIM-trained (coder) model
    chat_template: str | None
    bos: str
    eos: str
    gpu_offload: bool
    size_bytes: int


@dataclass(slots=True)
class Figures:
    """What one request cost; reported in the log, qwenLsp/stats and `complete --json`."""

    prompt_tokens: int = 0
    reused_tokens: int = 0
    evaluated_tokens: int = 0
    generated_tokens: int = 0
    prefill_ms: float = 0.0
    generate_ms: float = 0.0
    checkpoint_hits: int = 0
    checkpoint_misses: int = 0
    checkpoints_saved: int = 0
    restore_ms: float = 0.0
    save_ms: float = 0.0


@dataclass(slots=True)
class Generation:
    text: str
    tokens: list[int]
    stop_reason: str  # eos | stop | rule | length | time
    figures: Figures = field(default_factory=Figures)
    # Where the prompt's evaluation was split into batches (see `LlamaEngine.prepare`).
    schedule: list[int] = field(default_factory=list)
    # The prompt as the engine evaluated it (in-process engine only; benchmarks, tests).
    prompt_tokens: list[int] = field(default_factory=list)


@dataclass(frozen=True, slots=True)
class Segment:
    """One piece of the prompt.

    `specials` lists the control-token strings parsed in `text` (``ALL_SPECIALS`` for
    template text, empty for user content). `checkpoint` asks the engine to keep the
    model state at the segment's end; `line_checkpoints` at line ends inside it too.
    """

    name: str
    text: str
    specials: tuple[str, ...] = ()
    checkpoint: bool = False
    line_checkpoints: bool = False


@dataclass(frozen=True, slots=True)
class Prompt:
    format: PromptFormat
    segments: tuple[Segment, ...]
    stop: tuple[str, ...] = ()  # text that ends the suggestion when the model writes it

    @property
    def text(self) -> str:
        return "".join(s.text for s in self.segments)

    def stable_length(self) -> int:
        """How many segments precede the cursor-dependent part (what warm-up evaluates)."""
        for index, segment in enumerate(self.segments):
            if segment.name in ("prefix", "fim-prefix-head"):
                return index
        return len(self.segments)


def file_identity(path: str) -> tuple[int, ...] | None:
    """What changes when a file is replaced or rewritten (None when it is gone)."""
    try:
        st = os.stat(path)
    except OSError:
        return None
    return (st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns)


def text_end(
    text: str, stop: Sequence[str], rule: Callable[[str], int | None] | None
) -> tuple[str, str] | None:
    """Where generated `text` ends, by the rules every engine applies: before a `stop`
    string, or where `rule(text)` says. (text kept, stop reason), None to go on."""
    cut = _find_stop(text, stop)
    if cut is not None:
        return text[:cut], "stop"
    if rule is not None:
        keep = rule(text)
        if keep is not None:
            return text[:keep], "rule"
    return None


def _find_stop(text: str, stops: Sequence[str]) -> int | None:
    cuts = [i for i in (text.find(s) for s in stops if s) if i >= 0]
    return min(cuts) if cuts else None


class Engine(Protocol):
    """What the completer and the code actions need of an engine.

    Implemented by `LlamaEngine` (in-process llama.cpp: tokens, checkpoints) and
    `RemoteEngine` (a serving engine over HTTP: the prompt as text). Every method runs
    on the engine's owner thread.
    """

    info: ModelInfo

    @property
    def n_ctx(self) -> int: ...

    def count_tokens(self, text: str) -> int:
        """Tokens of `text` as user content (for the context budget)."""
        ...

    def run(
        self,
        prompt: Prompt,
        *,
        max_tokens: int,
        rule: Callable[[str], int | None] | None = None,
        cancel: CancelToken = NEVER,
    ) -> Generation:
        """Generate after `prompt` (greedy) until a stop string of the prompt, `rule`,
        `max_tokens`, the cancel token's deadline or the end of the context."""
        ...

    def warm(self, prompt: Prompt, cancel: CancelToken = NEVER) -> Figures:
        """Evaluate `prompt` up to its last checkpoint ahead of a request (idle time);
        engines that keep no state of ours do nothing."""
        ...

    def model_file_changed(self) -> bool: ...

    def describe(self) -> dict[str, Any]:
        """The engine's own figures for `qwenLsp/stats`."""
        ...

    def close(self) -> None: ...
