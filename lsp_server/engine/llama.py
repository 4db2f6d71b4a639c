"""The in-process llama.cpp engine: one model, one context, state reused across requests.

Why the low-level `llama_cpp` API and not `Llama`: `Llama.generate` re-evaluates the
whole prompt whenever a hybrid model (Qwen3.6: Gated DeltaNet + attention) cannot trim
its cache, which is on every keystroke (docs/engine.md). Here we keep the tokens
that are in the context, find the longest common prefix with the next prompt and:
- pure attention: trim the KV cache after it and evaluate the rest;
- hybrid/recurrent: restore the newest checkpoint at or before it (partial state,
  `LLAMA_STATE_SEQ_FLAGS_PARTIAL_ONLY`), *then* trim (the trim fails before the
  restore), check every return value, and evaluate from there.
Checkpoints are saved while evaluating, at the positions the caller asks for.

Everything here runs on one thread (the engine worker); nothing is thread-safe.
"""

from __future__ import annotations

import ctypes
import logging
import os
import re
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import llama_cpp
import numpy as np
from cachetools import LRUCache

from lsp_server.engine.checkpoints import CheckpointCache
from lsp_server.engine.types import (
    NEVER,
    Cancelled,
    CancelToken,
    EngineConfig,
    EngineError,
    Figures,
    Generation,
    ModelInfo,
    ModelLoadError,
    Prompt,
    file_identity,
    text_end,
)

log = logging.getLogger(__name__)
llama_log = logging.getLogger("llama.cpp")

PARTIAL = llama_cpp.LLAMA_STATE_SEQ_FLAGS_PARTIAL_ONLY

FIM_TOKEN_TEXTS = ("<|fim_prefix|>", "<|fim_suffix|>", "<|fim_middle|>")
FIM_NAME_HINTS = ("coder", "fim", "starcoder", "codellama", "codestral", "codegemma")


# llama.cpp's log goes to Python logging (and so to stderr / the LSP log, never stdout).
# ggml's levels: NONE 0, DEBUG 1, INFO 2, WARN 3, ERROR 4, CONT 5 (continues the last).
_LEVELS = {
    0: logging.CRITICAL,
    1: logging.DEBUG,
    2: logging.INFO,
    3: logging.WARNING,
    4: logging.ERROR,
}
_log_last = [logging.DEBUG]
# Warnings that are the engine's normal course: a full KV cache fails a decode, and the
# engine then drops the least recently used sequence and decodes again (logged at DEBUG).
# llama.cpp logs the same full cache at ERROR from the batch preparation first.
_EXPECTED_WARNINGS = (
    b"decode: failed to find a memory slot",
    b"init_batch: failed to prepare attention ubatches",
)


@llama_cpp.llama_log_callback  # type: ignore[misc]
def _llama_log(level: int, text: bytes, _user: ctypes.c_void_p) -> None:
    lvl = _log_last[0] if level == 5 else _LEVELS.get(level, logging.DEBUG)
    if lvl in (logging.WARNING, logging.ERROR) and text.startswith(_EXPECTED_WARNINGS):
        lvl = logging.DEBUG
    _log_last[0] = lvl
    if llama_log.isEnabledFor(lvl):
        message = text.decode("utf-8", "replace").rstrip()
        if message:
            llama_log.log(lvl, "%s", message)


_backend_ready = False


def _init_backend() -> None:
    global _backend_ready
    if not _backend_ready:
        llama_cpp.llama_log_set(_llama_log, ctypes.c_void_p(0))
        llama_cpp.llama_backend_init()
        _backend_ready = True
    # llama.cpp logs model loading at INFO: keep it at debug unless asked.
    if llama_log.level == logging.NOTSET:
        llama_log.setLevel(logging.WARNING)


# The largest micro-batch llama.cpp evaluates at once (its own default is 512; larger ones
# speed up prompt evaluation on big GPUs).
MAX_UBATCH = 2048
LINE_CHECKPOINTS_AT_END = 2  # the last line ends of a prefix segment always get a checkpoint


@dataclass(slots=True)
class Tokenized:
    """A prompt as tokens, and the positions after which to keep the model's state."""

    tokens: list[int]
    checkpoints: list[int]
    anchors: list[int] = field(default_factory=list)  # the stable blocks' ends among them


def _check_gguf(path: str) -> None:
    """Fail early, with a message a user understands, before llama.cpp sees the file."""
    if not path:
        raise ModelLoadError("no model file is set (setting model.path)")
    if not os.path.exists(path):
        raise ModelLoadError(f"model file not found: {path}")
    if os.path.isdir(path):
        raise ModelLoadError(f"model path is a folder, not a GGUF file: {path}")
    try:
        with open(path, "rb") as fh:
            magic = fh.read(4)
    except OSError as exc:
        raise ModelLoadError(f"cannot read the model file {path}: {exc.strerror}") from exc
    if magic != b"GGUF":
        raise ModelLoadError(f"not a GGUF model file (bad header): {path}")


class LlamaEngine:
    """Owns one llama.cpp model and context; frees them in `close()`."""

    def __init__(self, config: EngineConfig) -> None:
        _init_backend()
        _check_gguf(config.model_path)
        self.config = config
        self._user_defined: re.Pattern[str] | None = None  # set by _scan_vocab
        # llama.cpp maps the file: if it is truncated or overwritten in place, reading the
        # weights kills the process (SIGBUS). Users must not touch it after that.
        self._file_id = file_identity(config.model_path)
        self._model: Any = None
        self._ctx: Any = None
        self._batch: Any = None
        mparams = llama_cpp.llama_model_default_params()
        mparams.n_gpu_layers = config.n_gpu_layers if config.n_gpu_layers >= 0 else 0x7FFFFFFF
        self._model = llama_cpp.llama_model_load_from_file(config.model_path.encode(), mparams)
        if not self._model:
            raise ModelLoadError(
                f"llama.cpp could not load {config.model_path} (corrupt or truncated file, or "
                "an architecture this llama-cpp-python build does not know; see `qwen-lsp doctor`)"
            )
        try:
            self._vocab = llama_cpp.llama_model_get_vocab(self._model)
            self.n_vocab = int(llama_cpp.llama_vocab_n_tokens(self._vocab))
            n_ctx_train = int(llama_cpp.llama_model_n_ctx_train(self._model))
            n_ctx = max(256, min(config.n_ctx, n_ctx_train or config.n_ctx))
            cparams = llama_cpp.llama_context_default_params()
            cparams.n_ctx = n_ctx
            cparams.n_batch = config.n_batch
            # llama.cpp's compute buffers grow with the micro-batch, faster than linearly on
            # hybrid models (a 32K one asked for 25 GB on a 1.5 MB test model, and a failed
            # allocation aborts the process): larger batches are split, never allocated whole.
            cparams.n_ubatch = min(config.n_batch, MAX_UBATCH)
            # Several sequences share one KV cache of n_ctx cells (unified): each keeps a
            # recent prompt (file) alive; the least recently used gives way when full.
            cparams.n_seq_max = max(1, config.slots)
            cparams.kv_unified = True
            # Half the logical CPUs approximates the physical cores, where llama.cpp is fastest.
            threads = config.n_threads or max(1, (os.cpu_count() or 2) // 2)
            cparams.n_threads = threads
            cparams.n_threads_batch = threads
            cparams.flash_attn_type = {
                "on": llama_cpp.LLAMA_FLASH_ATTN_TYPE_ENABLED,
                "off": llama_cpp.LLAMA_FLASH_ATTN_TYPE_DISABLED,
            }.get(config.flash_attention, llama_cpp.LLAMA_FLASH_ATTN_TYPE_AUTO)
            if config.kv_cache_type == "q8_0":
                cparams.type_k = llama_cpp.GGML_TYPE_Q8_0
                cparams.type_v = llama_cpp.GGML_TYPE_Q8_0
            cparams.no_perf = True
            self._ctx = llama_cpp.llama_init_from_model(self._model, cparams)
            if not self._ctx:
                raise ModelLoadError(
                    f"llama.cpp could not create a context of {n_ctx} tokens for "
                    f"{config.model_path} (out of memory? lower model.contextSize)"
                )
            self._batch = llama_cpp.llama_batch_init(config.n_batch, 0, 1)
            self._batch_views: tuple[np.ndarray, ...] | None = None
            self._batch_seq = -1
            self._mem = llama_cpp.llama_get_memory(self._ctx)
            self._piece_cache: dict[int, bytes] = {}
            self.n_ctx = int(llama_cpp.llama_n_ctx(self._ctx))
            self.hybrid = bool(
                llama_cpp.llama_model_is_hybrid(self._model)
                or llama_cpp.llama_model_is_recurrent(self._model)
            )
            self.info = self._read_info(n_ctx_train)
        except BaseException:
            self.close()
            raise
        self.checkpoints = CheckpointCache(config.checkpoint_bytes)
        # Per sequence, the tokens whose state the context holds, in order.
        self._seqs = [np.zeros(0, dtype=np.int32) for _ in range(max(1, config.slots))]
        # Per sequence, the positions where its batches ended: llama.cpp's kernels are
        # not batch-invariant (a different split moves logits by ~1e-3), so this is what
        # a fresh evaluation must follow to reproduce the state bit for bit (tests).
        self._bounds: list[list[int]] = [[] for _ in self._seqs]
        self._seq = 0  # the sequence the current request uses
        self._used = list(range(len(self._seqs)))  # least recently used first
        # The sequence the last request (not background work) used: background work never
        # rolls it back or clears it (a request preempting that work resumes from it).
        self._live: int | None = None
        self._protected: int | None = None  # the live sequence while background work runs
        self._said_no_room = False
        self._stop_ids, self.newline_tokens = self._scan_vocab()
        # Segment texts repeat from one keystroke to the next: tokenize each once.
        self._segment_tokens: LRUCache[tuple[str, tuple[str, ...]], tuple[int, ...]] = LRUCache(
            1024
        )
        log.info(
            "model loaded: %s (%s, %s, n_ctx %d of %d trained, %s)",
            os.path.basename(config.model_path),
            self.info.architecture,
            "hybrid" if self.hybrid else "attention",
            self.n_ctx,
            n_ctx_train,
            "GPU offload" if self.info.gpu_offload else "CPU",
        )

    # ---- lifetime -------------------------------------------------------------------

    def model_file_changed(self) -> bool:
        """Whether the model file is no longer the one loaded (replaced, rewritten,
        truncated or deleted). Its mapped weights may then be gone: reload, never decode."""
        return file_identity(self.config.model_path) != self._file_id

    def close(self) -> None:
        if self._batch is not None:
            llama_cpp.llama_batch_free(self._batch)
            self._batch = None
        if self._ctx:
            llama_cpp.llama_free(self._ctx)
            self._ctx = None
        if self._model:
            llama_cpp.llama_model_free(self._model)
            self._model = None

    def __enter__(self) -> LlamaEngine:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # ---- model facts ----------------------------------------------------------------

    def meta(self, key: str) -> str | None:
        size = 1 << 16
        buf = ctypes.create_string_buffer(size)
        n = llama_cpp.llama_model_meta_val_str(self._model, key.encode(), buf, size)
        if n < 0:
            return None
        if n >= size:
            buf = ctypes.create_string_buffer(n + 1)
            llama_cpp.llama_model_meta_val_str(self._model, key.encode(), buf, n + 1)
        return buf.value.decode("utf-8", "replace")

    def _read_info(self, n_ctx_train: int) -> ModelInfo:
        arch = self.meta("general.architecture") or ""
        name = " ".join(filter(None, [self.meta("general.name"), self.meta("general.basename")]))
        fim_ids = [self.token_id(t) for t in FIM_TOKEN_TEXTS]
        eos_id = llama_cpp.llama_vocab_eos(self._vocab)
        bos_id = llama_cpp.llama_vocab_bos(self._vocab)
        return ModelInfo(
            path=self.config.model_path,
            architecture=arch,
            name=name,
            n_ctx_train=n_ctx_train,
            n_ctx=self.n_ctx,
            n_vocab=self.n_vocab,
            hybrid=self.hybrid,
            has_fim_tokens=all(i is not None for i in fim_ids),
            fim_trained=any(h in name.lower() for h in FIM_NAME_HINTS),
            chat_template=self.meta("tokenizer.chat_template"),
            bos=self.piece(bos_id).decode("utf-8", "replace") if bos_id >= 0 else "",
            eos=self.piece(eos_id).decode("utf-8", "replace") if eos_id >= 0 else "",
            gpu_offload=bool(llama_cpp.llama_supports_gpu_offload())
            and self.config.n_gpu_layers != 0,
            size_bytes=int(llama_cpp.llama_model_size(self._model)),
        )

    def token_id(self, text: str) -> int | None:
        """The id of a special token given by its text, if the vocabulary has it."""
        ids = self.tokenize(text, special=True)
        if len(ids) == 1 and self.piece(ids[0]) == text.encode():
            return ids[0]
        return None

    def _scan_vocab(self) -> tuple[frozenset[int], np.ndarray]:
        """Once per model: the tokens that end a suggestion (end-of-generation and
        control tokens) and a mask of the tokens whose text holds a newline (where
        line checkpoints go, looked up per prompt without detokenizing it)."""
        stop = set()
        user_defined: set[str] = set()
        newline = np.zeros(self.n_vocab, dtype=bool)
        buf = ctypes.create_string_buffer(256)
        for token in range(self.n_vocab):
            attr = llama_cpp.llama_vocab_get_attr(self._vocab, token)
            if (
                llama_cpp.llama_vocab_is_eog(self._vocab, token)
                or attr & llama_cpp.LLAMA_TOKEN_ATTR_CONTROL
            ):
                stop.add(token)
            n = llama_cpp.llama_token_to_piece(self._vocab, token, buf, 256, 0, True)
            newline[token] = b"\n" in buf.raw[: max(0, n)]
            if attr & llama_cpp.LLAMA_TOKEN_ATTR_USER_DEFINED and n > 1:
                user_defined.add(buf.raw[:n].decode("utf-8", "replace"))
        # llama.cpp matches user-defined tokens (Qwen's `<think>`, `</think>`) in text
        # even with special parsing off: in the user's code they must stay plain text.
        self._user_defined = (
            re.compile("|".join(re.escape(t) for t in sorted(user_defined, key=len, reverse=True)))
            if user_defined
            else None
        )
        return frozenset(stop), newline

    # ---- text <-> tokens --------------------------------------------------------------

    def tokenize(self, text: str, *, special: bool = False) -> list[int]:
        """Tokens of `text`; control tokens are parsed only with `special` (template text).
        Without it, a user-defined token's text (``<think>``) is cut so that it is read as
        the characters it is, never as the token."""
        if not special and self._user_defined is not None and self._user_defined.search(text):
            out: list[int] = []
            last = 0
            for match in self._user_defined.finditer(text):
                out.extend(self._tokenize(text[last : match.start()], False))
                word = match.group(0)
                out.extend(self._tokenize(word[:1], False))
                out.extend(self._tokenize(word[1:], False))
                last = match.end()
            out.extend(self._tokenize(text[last:], False))
            return out
        return self._tokenize(text, special)

    def _tokenize(self, text: str, special: bool) -> list[int]:
        data = text.encode("utf-8", "replace")
        if not data:
            return []
        n_max = len(data) + 8
        buf = (llama_cpp.llama_token * n_max)()
        n = llama_cpp.llama_tokenize(self._vocab, data, len(data), buf, n_max, False, special)
        if n < 0:
            n_max = -n
            buf = (llama_cpp.llama_token * n_max)()
            n = llama_cpp.llama_tokenize(self._vocab, data, len(data), buf, n_max, False, special)
        if n < 0:
            raise EngineError("tokenization failed")
        return list(buf[:n])

    def tokenize_with(self, text: str, specials: Sequence[str]) -> list[int]:
        """Tokenize `text`, parsing only the control tokens listed in `specials`.

        ``("*",)`` parses all of them (template text); ``()`` none (the user's code).
        """
        if not specials:
            return self.tokenize(text)
        if tuple(specials) == ("*",):
            return self.tokenize(text, special=True)
        out: list[int] = []
        pattern = "(" + "|".join(re.escape(s) for s in specials) + ")"
        for part in re.split(pattern, text):
            if not part:
                continue
            out.extend(self.tokenize(part, special=part in specials))
        return out

    def _tokens_of(self, text: str, specials: tuple[str, ...]) -> tuple[int, ...]:
        key = (text, specials)
        cached = self._segment_tokens.get(key)
        if cached is None:
            cached = tuple(self.tokenize_with(text, specials))
            self._segment_tokens[key] = cached
        return cached

    def count_tokens(self, text: str) -> int:
        return len(self._tokens_of(text, ()))

    def tokenize_prompt(self, prompt: Prompt) -> Tokenized:
        """Tokens of `prompt` and the positions to checkpoint at: the end of each segment
        that asks for it, and line ends inside segments that ask for those."""
        tokens: list[int] = []
        checkpoints: list[int] = []
        anchors: list[int] = []
        interval = self.config.checkpoint_interval
        stable = True  # up to the cursor window: the suffix (chat) or FIM's prefix header
        for segment in prompt.segments:
            if segment.name == "suffix" or segment.name.startswith("fim-prefix"):
                stable = False
            seg = self._tokens_of(segment.text, segment.specials)
            start = len(tokens)
            tokens.extend(seg)
            if segment.line_checkpoints:
                ids = np.asarray(seg, dtype=np.int64)
                line_ends = [start + int(i) + 1 for i in np.flatnonzero(self.newline_tokens[ids])]
                last = start
                for pos in line_ends:
                    if pos - last >= interval:
                        checkpoints.append(pos)
                        last = pos
                checkpoints.extend(line_ends[-LINE_CHECKPOINTS_AT_END:])
                # A long last line (minified code, data) gets checkpoints every `interval`
                # tokens from its start, so typing in it does not evaluate it all again.
                line_start = line_ends[-1] if line_ends else start
                inside = range(line_start + interval, len(tokens) - 1, interval)
                checkpoints.extend(inside[-LINE_CHECKPOINTS_AT_END:])
            if segment.checkpoint:
                checkpoints.append(len(tokens))
                if stable:
                    anchors.append(len(tokens))
        return Tokenized(tokens, sorted(set(checkpoints)), sorted(set(anchors)))

    def run(
        self,
        prompt: Prompt,
        *,
        max_tokens: int,
        rule: Callable[[str], int | None] | None = None,
        cancel: CancelToken = NEVER,
    ) -> Generation:
        tokenized = self.tokenize_prompt(prompt)
        generation = self.generate(
            tokenized.tokens,
            checkpoints=tokenized.checkpoints,
            anchors=tokenized.anchors,
            max_tokens=max_tokens,
            stop=prompt.stop,
            rule=rule,
            cancel=cancel,
        )
        generation.prompt_tokens = tokenized.tokens
        return generation

    def warm(self, prompt: Prompt, cancel: CancelToken = NEVER) -> Figures:
        tokenized = self.tokenize_prompt(prompt)
        points = [p for p in tokenized.checkpoints if p < len(tokenized.tokens)]
        if not points:
            return Figures()
        end = points[-1]
        return self.prepare(
            tokenized.tokens[:end],
            points,
            cancel,
            save_end=True,
            fork=True,
            anchors=tokenized.anchors,
        )

    def describe(self) -> dict[str, Any]:
        return {
            "checkpoints": {
                "count": len(self.checkpoints),
                "bytes": self.checkpoints.bytes_used,
                "maxBytes": self.checkpoints.max_bytes,
                "hits": self.checkpoints.hits,
                "misses": self.checkpoints.misses,
            },
            "hybrid": self.hybrid,
        }

    def piece(self, token: int) -> bytes:
        cached = self._piece_cache.get(token)
        if cached is not None:
            return cached
        buf = ctypes.create_string_buffer(64)
        n = llama_cpp.llama_token_to_piece(self._vocab, token, buf, 64, 0, True)
        if n < 0:
            buf = ctypes.create_string_buffer(-n)
            n = llama_cpp.llama_token_to_piece(self._vocab, token, buf, -n, 0, True)
        data = buf.raw[: max(0, n)]
        self._piece_cache[token] = data
        return data

    def detokenize(self, tokens: Sequence[int]) -> str:
        return b"".join(self.piece(t) for t in tokens).decode("utf-8", "replace")

    # ---- state ----------------------------------------------------------------------

    @property
    def _tokens(self) -> np.ndarray:
        return self._seqs[self._seq]

    @_tokens.setter
    def _tokens(self, value: np.ndarray) -> None:
        old = len(self._seqs[self._seq])
        self._seqs[self._seq] = value
        if len(value) < old:
            self._bounds[self._seq] = [b for b in self._bounds[self._seq] if b <= len(value)]
        elif len(value) > old:
            self._bounds[self._seq].append(len(value))

    @property
    def tokens(self) -> np.ndarray:
        """The tokens whose state the current sequence holds (a copy)."""
        return self._tokens.copy()

    def reset(self) -> None:
        """Forget every sequence."""
        llama_cpp.llama_memory_clear(self._mem, True)
        self._seqs = [t[:0] for t in self._seqs]
        self._bounds = [[] for _ in self._seqs]

    def _clear_seq(self, seq: int) -> None:
        if not llama_cpp.llama_memory_seq_rm(self._mem, seq, -1, -1):
            self.reset()  # should not happen; stay correct
        self._seqs[seq] = self._seqs[seq][:0]
        self._bounds[seq] = []

    def _choose_seq(self, tokens: np.ndarray) -> int:
        """The sequence for `tokens`: the one sharing the longest prefix with it, unless
        that shares less than half, in which case an empty or the least recently used
        sequence, so that the others stay warm."""
        lcps = [_lcp(seq, tokens) for seq in self._seqs]
        best = max(self._used[::-1], key=lambda s: lcps[s])  # ties: most recently used
        if 2 * lcps[best] < len(tokens) and len(self._seqs) > 1:
            empty = [s for s in self._used if len(self._seqs[s]) == 0]
            best = empty[0] if empty else self._used[0]
        self._used.remove(best)
        self._used.append(best)
        return best

    def _trim(self, n: int) -> bool:
        """Drop positions >= n. False when the memory cannot (recurrent layers)."""
        if n >= len(self._tokens):
            return True
        ok = bool(llama_cpp.llama_memory_seq_rm(self._mem, self._seq, n, -1))
        if ok:
            self._tokens = self._tokens[:n]
        return ok

    def _save_checkpoint(
        self, figures: Figures, *, anchor: bool = False, covers: bool = True
    ) -> None:
        n = len(self._tokens)
        if self.checkpoints.has(self._tokens, n):
            return
        start = time.perf_counter()
        size = llama_cpp.llama_state_seq_get_size_ext(self._ctx, self._seq, PARTIAL)
        if size == 0 or size > self.checkpoints.max_bytes:
            return
        data = bytearray(size)
        buf = (ctypes.c_uint8 * size).from_buffer(data)
        written = llama_cpp.llama_state_seq_get_data_ext(self._ctx, buf, size, self._seq, PARTIAL)
        del buf  # release the export of `data` before it is stored
        if written != size:
            log.warning("checkpoint save wrote %d of %d bytes; not kept", written, size)
            return
        if self.checkpoints.put(self._tokens, n, data, anchor=anchor, covers=covers):
            figures.checkpoints_saved += 1
        figures.save_ms += (time.perf_counter() - start) * 1000

    def _restore(self, prompt: np.ndarray, limit: int, figures: Figures) -> int:
        """Roll the context back to at most `limit` tokens of `prompt`; returns the position."""
        if not self.hybrid:
            if self._trim(limit):
                return limit
            self._clear_seq(self._seq)
            return 0
        if limit >= len(self._tokens):
            return len(self._tokens)  # a pure extension: nothing to roll back
        start = time.perf_counter()
        checkpoint = self.checkpoints.find(prompt, limit)
        if checkpoint is None:
            figures.checkpoint_misses += 1
            self._clear_seq(self._seq)
            return 0
        figures.checkpoint_hits += 1
        data = checkpoint.data
        buf = (ctypes.c_uint8 * len(data)).from_buffer(data)
        read = llama_cpp.llama_state_seq_set_data_ext(self._ctx, buf, len(data), self._seq, PARTIAL)
        del buf
        # Restore first, then trim: on hybrid memory the trim only succeeds after it.
        if read == 0 or not llama_cpp.llama_memory_seq_rm(
            self._mem, self._seq, checkpoint.n_tokens, -1
        ):
            log.warning(
                "checkpoint restore at %d failed; evaluating from scratch", checkpoint.n_tokens
            )
            self._clear_seq(self._seq)
            return 0
        self._tokens = self._tokens[: checkpoint.n_tokens]
        figures.restore_ms += (time.perf_counter() - start) * 1000
        return checkpoint.n_tokens

    def _fork(self, prompt: np.ndarray, limit: int, figures: Figures) -> int:
        """Continue `prompt` in another sequence than the current one, which stays as it is.

        The other sequence (an empty one, else the least recently used) gets the attention
        cells of the newest checkpoint's prefix by `llama_memory_seq_cp` (in the unified KV
        cache that shares the cells, it copies nothing) and its recurrent state from the
        checkpoint. Returns the position reached (0 when no checkpoint fits: the other
        sequence then starts empty)."""
        src = self._seq
        others = [s for s in self._used if s != src]
        empty = [s for s in others if len(self._seqs[s]) == 0]
        dst = empty[0] if empty else others[0]
        self._clear_seq(dst)
        self._used.remove(dst)
        self._used.append(dst)
        checkpoint = self.checkpoints.find(prompt, limit)
        if checkpoint is None:
            figures.checkpoint_misses += 1
            self._seq = dst
            return 0
        start = time.perf_counter()
        n = checkpoint.n_tokens
        llama_cpp.llama_memory_seq_cp(self._mem, src, dst, 0, n)
        data = checkpoint.data
        buf = (ctypes.c_uint8 * len(data)).from_buffer(data)
        read = llama_cpp.llama_state_seq_set_data_ext(self._ctx, buf, len(data), dst, PARTIAL)
        del buf
        self._seq = dst
        if read == 0 or not llama_cpp.llama_memory_seq_rm(self._mem, dst, n, -1):
            log.warning("checkpoint fork at %d failed; evaluating from scratch", n)
            self._clear_seq(dst)
            return 0
        figures.checkpoint_hits += 1
        self._seqs[dst] = self._seqs[src][:n].copy()
        self._bounds[dst] = [b for b in self._bounds[src] if b <= n]
        figures.restore_ms += (time.perf_counter() - start) * 1000
        return n

    def _fill_batch(self, tokens: np.ndarray, start: int) -> None:
        """Write `tokens` at positions start.. of the current sequence into the batch,
        through numpy views of its C arrays (a Python loop per token would cost more
        than the decode of a small model)."""
        batch = self._batch
        size = self.config.n_batch
        if self._batch_views is None:
            self._batch_views = (
                np.ctypeslib.as_array(batch.token, shape=(size,)),
                np.ctypeslib.as_array(batch.pos, shape=(size,)),
                np.ctypeslib.as_array(batch.n_seq_id, shape=(size,)),
                np.ctypeslib.as_array(batch.logits, shape=(size,)),
            )
            self._batch_views[2][:] = 1
        if self._batch_seq != self._seq:
            for i in range(size):
                batch.seq_id[i][0] = self._seq
            self._batch_seq = self._seq
        token, pos, _, logits = self._batch_views
        n = len(tokens)
        token[:n] = tokens
        pos[:n] = np.arange(start, start + n, dtype=pos.dtype)
        logits[:n] = 0
        logits[n - 1] = 1
        batch.n_tokens = n

    def _decode(self, tokens: np.ndarray, start: int) -> None:
        """Evaluate `tokens` at positions start.. in one batch (len <= n_batch)."""
        batch = self._batch
        self._fill_batch(tokens, start)
        rc = llama_cpp.llama_decode(self._ctx, batch)
        while rc == 1:
            # No room in the shared KV cache: the least recently used other sequence goes,
            # never the one requests use while background work runs.
            others = [
                s
                for s in self._used
                if s != self._seq and s != self._protected and len(self._seqs[s])
            ]
            if not others:
                break
            log.debug(
                "KV cache full: dropping sequence %d (%d tokens)",
                others[0],
                len(self._seqs[others[0]]),
            )
            self._clear_seq(others[0])
            rc = llama_cpp.llama_decode(self._ctx, batch)
        if rc != 0:
            # The sequence may hold a partial batch now: start it clean next time.
            self._clear_seq(self._seq)
            if rc == 1 and self._protected is not None:
                self._no_room()
            if rc == 1:
                raise EngineError(
                    "the context is full (raise model.contextSize or lower context.budgetTokens)"
                )
            raise EngineError(f"llama_decode failed ({rc})")
        self._tokens = np.concatenate([self._tokens, tokens])

    # ---- evaluation -------------------------------------------------------------------

    def prepare(
        self,
        prompt: Sequence[int] | np.ndarray,
        checkpoints: Sequence[int] = (),
        cancel: CancelToken = NEVER,
        figures: Figures | None = None,
        *,
        save_end: bool = False,
        splits: Sequence[int] = (),
        fork: bool = False,
        anchors: Sequence[int] = (),
    ) -> Figures:
        """Make the context hold `prompt`, evaluating only what is not there yet.

        `fork` (background work): when `prompt` departs from the best sequence before its
        end, leave that sequence as it is and continue in another one from the newest
        checkpoint (`_fork`), so the request it was kept for still finds it.

        `checkpoints` are positions after which to save the recurrent state (hybrid
        models only); `save_end` saves one after the whole prompt too (warm-up).
        Batches end at those positions and at `splits`, and hold at most n_batch tokens.
        Cancellation is checked between batches; what was evaluated before it stays
        valid and is reused by the next request.
        """
        figures = figures if figures is not None else Figures()
        tokens = np.asarray(prompt, dtype=np.int32)
        n = len(tokens)
        if n == 0:
            raise EngineError("empty prompt")
        if n >= self.n_ctx:
            raise EngineError(f"prompt of {n} tokens does not fit the context of {self.n_ctx}")
        figures.prompt_tokens = n
        self._seq = self._choose_seq(tokens)
        lcp = _lcp(self._tokens, tokens)
        forked = False
        if (
            fork
            and self.hybrid
            and self._seq == self._live
            and lcp < len(self._tokens)
            and len(self._seqs) > 1
        ):
            # Background work that would roll back the sequence a request is about to use
            # (a refreshed snapshot differs inside the stable part): work in another one.
            pos = self._fork(tokens, min(lcp, n - 1), figures)
            forked = True
        else:
            # At least the last prompt token is evaluated: its logits start generation.
            # (Background work lands here only in a sequence no request is using.)
            pos = self._restore(tokens, min(lcp, n - 1), figures)
        if not fork:
            self._live = self._seq
        elif self._live is not None and self._seq != self._live:
            # Background work beside the requests' sequence: it must fit beside it.
            own = n if pos == 0 or not forked else n - pos
            if len(self._seqs[self._live]) + own > self.n_ctx:
                self._no_room()
        figures.reused_tokens = pos
        log.debug(
            "prepare %d tokens in sequence %d (%s, live %s): common prefix %d, from %d",
            n,
            self._seq,
            "background" if fork else "request",
            self._live,
            lcp,
            pos,
        )
        start = time.perf_counter()
        self._protected = self._live if fork and self._live != self._seq else None
        try:
            saves = {p for p in checkpoints if pos < p < n} if self.hybrid else set()
            if save_end and self.hybrid:
                saves.add(n)
            stops = sorted(saves | {p for p in splits if pos < p < n} | {n})
            n_batch = self.config.n_batch
            for stop in stops:
                while pos < stop:
                    cancel.check()
                    end = min(stop, pos + n_batch)
                    self._decode(tokens[pos:end], pos)
                    figures.evaluated_tokens += end - pos
                    pos = end
                if stop in saves:
                    self._save_checkpoint(
                        figures, anchor=stop in anchors or stop == n, covers=stop in anchors
                    )
        finally:
            self._protected = None
            figures.prefill_ms += (time.perf_counter() - start) * 1000
        return figures

    def _no_room(self) -> None:
        """Background work does not fit beside the requests' sequence: it is given up
        (never that sequence), and the user is told once what would make room."""
        if not self._said_no_room:
            self._said_no_room = True
            log.info(
                "the context (model.contextSize %d) holds no second prompt beside the one "
                "requests use: the snapshot of a file is not refreshed in the background "
                "(raise model.contextSize to twice the prompt, or lower context.budgetTokens)",
                self.n_ctx,
            )
        raise Cancelled("no room beside the requests' prompt")

    def logits(self) -> np.ndarray:
        ptr = llama_cpp.llama_get_logits_ith(self._ctx, -1)
        return np.ctypeslib.as_array(ptr, shape=(self.n_vocab,))

    def generate(
        self,
        prompt: Sequence[int] | np.ndarray,
        *,
        checkpoints: Sequence[int] = (),
        anchors: Sequence[int] = (),
        max_tokens: int = 128,
        stop: Sequence[str] = (),
        rule: Callable[[str], int | None] | None = None,
        cancel: CancelToken = NEVER,
        splits: Sequence[int] = (),
    ) -> Generation:
        """Greedy generation after `prompt`.

        Stops at an end-of-generation or control token, at a `stop` string (cut before
        it), where `rule(text)` returns a length to keep, after `max_tokens`, or at the
        cancel token's deadline (keeping what was generated). `Cancelled` is raised when
        the token is cancelled.
        """
        figures = Figures()
        try:
            self.prepare(prompt, checkpoints, cancel, figures, splits=splits, anchors=anchors)
        except Cancelled as exc:
            exc.figures = figures
            raise
        schedule = list(self._bounds[self._seq])
        start = time.perf_counter()
        out: list[int] = []
        raw = b""
        text = ""
        reason = "length"
        try:
            for _ in range(max_tokens):
                token = int(np.argmax(self.logits()))
                if token in self._stop_ids:
                    reason = "eos"
                    break
                out.append(token)
                raw += self.piece(token)
                text = raw.decode("utf-8", "ignore")
                ended = text_end(text, stop, rule)
                if ended is not None:
                    text, reason = ended
                    break
                if cancel.cancelled:
                    figures.generated_tokens = len(out)
                    stopped = Cancelled(cancel.reason)
                    stopped.figures = figures
                    raise stopped
                if cancel.deadline is not None and time.monotonic() > cancel.deadline:
                    reason = "time"
                    break
                if len(self._tokens) + 1 >= self.n_ctx:
                    break
                self._decode(np.asarray([token], dtype=np.int32), len(self._tokens))
        finally:
            figures.generated_tokens = len(out)
            figures.generate_ms = (time.perf_counter() - start) * 1000
        return Generation(
            text=text, tokens=out, stop_reason=reason, figures=figures, schedule=schedule
        )


def vocabulary_token_counter(model_path: str) -> Callable[[str], int]:
    """Count tokens as the model at `model_path` does, with only its vocabulary loaded
    (no weights: about a second even for the 27B model): `qwen-lsp context --model`."""
    from context.tokens import llama_token_counter

    llama = llama_cpp.Llama(model_path=model_path, vocab_only=True, verbose=False)
    return llama_token_counter(llama)


def _lcp(a: np.ndarray, b: np.ndarray) -> int:
    """Length of the longest common prefix of two token arrays."""
    common = min(len(a), len(b))
    mismatch = np.flatnonzero(a[:common] != b[:common])
    return int(mismatch[0]) if len(mismatch) else common
