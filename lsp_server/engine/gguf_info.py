"""What a GGUF model file is, read from its header without loading the weights.

`read_gguf_info` answers the questions the server, `qwen-lsp doctor` and model
resolution ask about a file: is it a GGUF at all, is it complete, which architecture
(and is it hybrid/recurrent, which matters for prompt caching), how long a context it
was trained for, which FIM tokens its vocabulary has, whether it carries a chat template.

Why a parser of our own instead of `gguf.GGUFReader`: the reader builds numpy views for
every array item, so the 248K-entry vocabulary and ~250K merges of Qwen3.6 cost seconds
and hundreds of MB, and it maps and indexes the tensors too. The header is a simple
format (magic, version, tensor count, KV count, the KVs, the tensor infos), so we walk it
once over a read-only memory map, skip the arrays we don't need (merges, scores) by
their lengths, and never touch the tensor data. That takes well under a second even
for a 16 GB file, and lets us check that the file is as long as its tensor table says,
which catches an interrupted download before llama.cpp fails on it.
"""

from __future__ import annotations

import logging
import mmap
import os
import re
import struct
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import gguf

log = logging.getLogger(__name__)

GGUF_MAGIC = b"GGUF"

# Architectures whose memory has a recurrent part (state-space, DeltaNet, RWKV...):
# llama.cpp cannot trim their cache back to an arbitrary position, so the engine has
# to checkpoint (docs/engine.md). This mirrors llama.cpp's `llm_arch_is_recurrent`
# and `llm_arch_is_hybrid`; newer architectures are also caught by their metadata
# keys (`{arch}.ssm.*`, `{arch}.wkv.*`, `{arch}.full_attention_interval`).
HYBRID_ARCHITECTURES: frozenset[str] = frozenset(
    {
        # hybrid: attention layers plus recurrent layers
        "qwen35",
        "qwen35moe",
        "qwen3next",
        "jamba",
        "falcon-h1",
        "granitehybrid",
        "lfm2",
        "lfm2moe",
        "nemotron_h",
        "nemotron_h_moe",
        "plamo2",
        "kimi-linear",
        # purely recurrent
        "mamba",
        "mamba2",
        "rwkv6",
        "rwkv6qwen2",
        "rwkv7",
        "arwkv7",
    }
)

# Special tokens of the Qwen FIM / repository-level prompt formats.
FIM_TOKEN_TEXTS: tuple[str, ...] = (
    "<|fim_prefix|>",
    "<|fim_suffix|>",
    "<|fim_middle|>",
    "<|repo_name|>",
    "<|file_sep|>",
)
_FIM_CORE = FIM_TOKEN_TEXTS[:3]

# Words in a model's name or tags that suggest it was trained for fill-in-the-middle.
# Having the tokens is not enough: Qwen3.6 has them in its vocabulary but is an
# instruct model (docs/engine.md).
FIM_NAME_HINTS: tuple[str, ...] = (
    "coder",
    "fim",
    "starcoder",
    "codellama",
    "code-llama",
    "codestral",
    "codegemma",
    "codeqwen",
    "deepseek-coder",
)

# A quantization name in a file name, e.g. "Qwen3.6-27B-UD-Q4_K_XL.gguf" -> "UD-Q4_K_XL".
_QUANT_IN_NAME = re.compile(
    r"(?:UD-)?(?:I?Q\d(?:_[A-Z0-9]+)*|BF16|F16|F32|MXFP4(?:_MOE)?)(?=[.-]|$)", re.IGNORECASE
)
_SPLIT_IN_NAME = re.compile(r"-(\d{5})-of-(\d{5})\.gguf$", re.IGNORECASE)

# Element sizes of the scalar value types, by GGUF type number.
_SCALAR_FORMATS: dict[int, str] = {
    gguf.GGUFValueType.UINT8: "B",
    gguf.GGUFValueType.INT8: "b",
    gguf.GGUFValueType.UINT16: "H",
    gguf.GGUFValueType.INT16: "h",
    gguf.GGUFValueType.UINT32: "I",
    gguf.GGUFValueType.INT32: "i",
    gguf.GGUFValueType.FLOAT32: "f",
    gguf.GGUFValueType.BOOL: "?",
    gguf.GGUFValueType.UINT64: "Q",
    gguf.GGUFValueType.INT64: "q",
    gguf.GGUFValueType.FLOAT64: "d",
}
_STRING = int(gguf.GGUFValueType.STRING)
_ARRAY = int(gguf.GGUFValueType.ARRAY)

# Arrays whose items we keep (small); other arrays are skipped by length.
_KEPT_ARRAYS = frozenset({"general.tags", "general.languages"})
_TOKENS_KEY = "tokenizer.ggml.tokens"
# Far more than any real file has; a bigger count means a corrupt header, and failing
# early beats trying to walk billions of entries.
_MAX_COUNT = 1 << 32


class GgufError(ValueError):
    """A file that is not a readable GGUF model; the message is meant for the user."""


@dataclass(frozen=True)
class GgufInfo:
    """Metadata of a GGUF model file (see `read_gguf_info`)."""

    path: Path
    size_bytes: int
    architecture: str
    name: str | None
    basename: str | None
    context_length: int | None
    """Context length the model was trained for (`{arch}.context_length`)."""
    block_count: int | None
    is_hybrid: bool
    """True when the model has recurrent layers, so its cache cannot be trimmed."""
    fim_tokens: Mapping[str, int]
    """Which of `FIM_TOKEN_TEXTS` the vocabulary has, mapped to their token ids."""
    has_chat_template: bool
    chat_template: str | None = field(repr=False)
    quantization: str | None
    fim_trained_hint: bool
    """True when the name or tags suggest a FIM-trained (coder) model."""
    gguf_version: int = 3
    tensor_count: int = 0
    vocab_size: int | None = None
    split_count: int = 1
    """Number of files the model is split into (this is the first when > 1)."""
    tags: tuple[str, ...] = ()
    metadata: Mapping[str, Any] = field(default_factory=dict, repr=False, compare=False)
    """All scalar and string metadata values, by key (arrays left out)."""

    @property
    def has_fim_tokens(self) -> bool:
        """True when prefix, suffix and middle FIM tokens are all in the vocabulary."""
        return all(t in self.fim_tokens for t in _FIM_CORE)

    @property
    def size_gb(self) -> float:
        """File size in GB (10^9 bytes, as download sites count)."""
        return self.size_bytes / 1e9


class _Truncated(Exception):
    """The header claims more bytes than the file has."""


class _Corrupt(Exception):
    """The header holds values no valid GGUF file has."""


class _Parser:
    """Sequential reader over a buffer with bounds checks (no copies of big spans)."""

    def __init__(self, buf: mmap.mmap | bytes, endian: str) -> None:
        self.buf = buf
        self.size = len(buf)
        self.pos = 0
        self.endian = endian

    def need(self, n: int) -> None:
        if n < 0 or self.pos + n > self.size:
            raise _Truncated

    def scalar(self, fmt: str) -> Any:
        width = struct.calcsize(fmt)
        self.need(width)
        (value,) = struct.unpack_from(self.endian + fmt, self.buf, self.pos)
        self.pos += width
        return value

    def u32(self) -> int:
        return int(self.scalar("I"))

    def u64(self) -> int:
        return int(self.scalar("Q"))

    def raw_string(self) -> bytes:
        n = self.u64()
        self.need(n)
        data = bytes(self.buf[self.pos : self.pos + n])
        self.pos += n
        return data

    def string(self) -> str:
        return self.raw_string().decode("utf-8", errors="replace")

    def skip_string(self) -> None:
        n = self.u64()
        self.need(n)
        self.pos += n

    def count(self) -> int:
        n = self.u64()
        if n > _MAX_COUNT:
            raise _Corrupt(f"implausible count {n}")
        return n

    def value(self, vtype: int) -> Any:
        fmt = _SCALAR_FORMATS.get(vtype)
        if fmt is not None:
            return self.scalar(fmt)
        if vtype == _STRING:
            return self.string()
        raise _Corrupt(f"unknown value type {vtype}")

    def skip_array(self, item_type: int, n: int) -> None:
        fmt = _SCALAR_FORMATS.get(item_type)
        if fmt is not None:
            width = struct.calcsize(fmt) * n
            self.need(width)
            self.pos += width
        elif item_type == _STRING:
            for _ in range(n):
                self.skip_string()
        elif item_type == _ARRAY:
            for _ in range(n):
                inner_type = self.u32()
                self.skip_array(inner_type, self.count())
        else:
            raise _Corrupt(f"unknown array item type {item_type}")

    def scan_tokens(self, n: int, wanted: dict[bytes, str]) -> dict[str, int]:
        """Walk the vocabulary once, noting the ids of the wanted token texts."""
        found: dict[str, int] = {}
        lengths = {len(w) for w in wanted}
        unpack = struct.Struct(self.endian + "Q").unpack_from
        buf, size, pos = self.buf, self.size, self.pos
        for token_id in range(n):
            if pos + 8 > size:
                raise _Truncated
            (length,) = unpack(buf, pos)
            pos += 8
            if pos + length > size:
                raise _Truncated
            # Compare bytes only for tokens of a matching length: the loop stays cheap
            # for a 248K-token vocabulary.
            if length in lengths:
                text = wanted.get(bytes(buf[pos : pos + length]))
                if text is not None and text not in found:
                    found[text] = token_id
            pos += length
        self.pos = pos
        return found


@dataclass
class _Header:
    version: int
    tensor_count: int
    metadata: dict[str, Any]
    arrays: dict[str, list[Any]]
    array_lengths: dict[str, int]
    fim_tokens: dict[str, int]
    data_end: int | None
    """Where the last tensor's data ends, or None when a tensor type is unknown."""


def _parse(buf: mmap.mmap | bytes) -> _Header:
    if len(buf) < 8:
        raise _Truncated
    # The magic is the bytes "GGUF"; the version tells the byte order (big-endian files
    # exist for s390x).
    (version,) = struct.unpack_from("<I", buf, 4)
    endian = "<"
    if version & 0xFFFF == 0 and version != 0:
        endian = ">"
        (version,) = struct.unpack_from(">I", buf, 4)
    p = _Parser(buf, endian)
    p.pos = 8
    if version == 1:
        raise GgufError("it is a GGUF version 1 file, which llama.cpp no longer reads")
    if version not in (2, 3):
        raise _Corrupt(f"unknown GGUF version {version}")
    tensor_count = p.count()
    kv_count = p.count()

    metadata: dict[str, Any] = {}
    arrays: dict[str, list[Any]] = {}
    array_lengths: dict[str, int] = {}
    fim_tokens: dict[str, int] = {}
    wanted = {t.encode(): t for t in FIM_TOKEN_TEXTS}
    for _ in range(kv_count):
        key = p.string()
        vtype = p.u32()
        if vtype != _ARRAY:
            metadata[key] = p.value(vtype)
            continue
        item_type = p.u32()
        n = p.count()
        array_lengths[key] = n
        if key == _TOKENS_KEY and item_type == _STRING:
            fim_tokens = p.scan_tokens(n, wanted)
        elif key in _KEPT_ARRAYS and (item_type == _STRING or item_type in _SCALAR_FORMATS):
            arrays[key] = [p.value(item_type) for _ in range(n)]
        else:
            p.skip_array(item_type, n)

    alignment = metadata.get("general.alignment", gguf.GGUF_DEFAULT_ALIGNMENT)
    if not isinstance(alignment, int) or alignment <= 0 or alignment & (alignment - 1):
        raise _Corrupt(f"bad alignment {alignment!r}")

    # Tensor infos: name, dims, type, offset (relative to the aligned data section).
    data_len = 0
    known_sizes = True
    for _ in range(tensor_count):
        p.skip_string()
        n_dims = p.u32()
        if n_dims > 8:
            raise _Corrupt(f"tensor with {n_dims} dimensions")
        elements = 1
        for _ in range(n_dims):
            elements *= p.u64()
        ttype = p.u32()
        offset = p.u64()
        try:
            block, type_size = gguf.GGML_QUANT_SIZES[gguf.GGMLQuantizationType(ttype)]
        except (ValueError, KeyError):
            # A type newer than our gguf package: llama.cpp may still know it.
            known_sizes = False
            continue
        data_len = max(data_len, offset + elements // block * type_size)
    data_start = -(-p.pos // alignment) * alignment
    data_end = data_start + data_len if known_sizes else None
    if tensor_count == 0:
        data_end = p.pos
    return _Header(
        version=version,
        tensor_count=tensor_count,
        metadata=metadata,
        arrays=arrays,
        array_lengths=array_lengths,
        fim_tokens=fim_tokens,
        data_end=data_end,
    )


def _not_gguf_message(path: Path, head: bytes) -> str:
    if head.startswith(b"version https://git-lfs"):
        return (
            f"{path} is a Git LFS pointer, not the model itself: fetch the real file "
            "(`git lfs pull` in that repository, or `qwen-lsp pull`)"
        )
    stripped = head.lstrip().lower()
    if stripped.startswith((b"<!doctype html", b"<html", b"{", b"entry not found")):
        return (
            f"{path} is not a GGUF file but a saved web page or error message "
            "(a failed download?): download it again, e.g. with `qwen-lsp pull`"
        )
    if head[8:9] == b"{" and len(head) >= 8:
        return f"{path} looks like a safetensors file; llama.cpp needs the GGUF conversion"
    return (
        f"{path} is not a GGUF file (it starts with {head[:4]!r}; GGUF files start "
        f"with {GGUF_MAGIC!r}): point model.path at a .gguf file"
    )


def _quantization(path: Path, metadata: Mapping[str, Any]) -> str | None:
    file_type = metadata.get("general.file_type")
    if isinstance(file_type, int):
        try:
            name = gguf.LlamaFileType(file_type).name
        except ValueError:
            name = ""
        if name and name != "GUESSED":
            return name.removeprefix("MOSTLY_").removeprefix("ALL_")
    # Older or hand-made files lack general.file_type; the file name usually says it.
    match = _QUANT_IN_NAME.search(_SPLIT_IN_NAME.sub(".gguf", path.name))
    return match.group(0).upper() if match else None


def _fim_hint(path: Path, metadata: Mapping[str, Any], tags: tuple[str, ...]) -> bool:
    words = [
        metadata.get("general.name"),
        metadata.get("general.basename"),
        metadata.get("general.finetune"),
        path.name,
        *tags,
    ]
    text = " ".join(w for w in words if isinstance(w, str)).lower()
    return any(hint in text for hint in FIM_NAME_HINTS)


def _is_hybrid(arch: str, metadata: Mapping[str, Any]) -> bool:
    if arch in HYBRID_ARCHITECTURES:
        return True
    prefixes = (f"{arch}.ssm.", f"{arch}.wkv.")
    return f"{arch}.full_attention_interval" in metadata or any(
        key.startswith(prefixes) for key in metadata
    )


def _int_or_none(value: Any) -> int | None:
    return int(value) if isinstance(value, int) and not isinstance(value, bool) else None


def read_gguf_info(path: str | os.PathLike[str]) -> GgufInfo:
    """Read a GGUF file's metadata without loading its weights.

    Raises `GgufError` with a message for the user when the file is missing, a
    directory, not a GGUF file, or truncated/corrupt (e.g. an interrupted download).
    """
    p = Path(path)
    try:
        with open(p, "rb") as f:
            size = os.fstat(f.fileno()).st_size
            head = f.read(64)
            if len(head) == 0:
                raise GgufError(f"{p} is empty (an interrupted download?): download it again")
            if head[:4] != GGUF_MAGIC:
                raise GgufError(_not_gguf_message(p, head))
            # A read-only map costs address space, not memory: only the header pages
            # we walk are read from disk.
            with mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ) as buf:
                header = _parse(buf)
    except GgufError:
        raise
    except FileNotFoundError:
        raise GgufError(f"model file not found: {p}") from None
    except IsADirectoryError:
        raise GgufError(f"{p} is a directory: point to the .gguf file inside it") from None
    except PermissionError:
        if p.is_dir():  # Windows reports opening a directory as "permission denied"
            raise GgufError(f"{p} is a directory: point to the .gguf file inside it") from None
        raise GgufError(f"cannot read {p}: permission denied") from None
    except OSError as exc:
        raise GgufError(f"cannot read {p}: {exc.strerror or exc}") from None
    except _Truncated:
        raise GgufError(
            f"{p} is truncated: its GGUF header ends past the end of the file "
            "(an interrupted download?): download it again"
        ) from None
    except (_Corrupt, struct.error, UnicodeDecodeError) as exc:
        raise GgufError(f"{p} is a corrupt GGUF file ({exc}): download it again") from None

    if header.data_end is not None and header.data_end > size:
        raise GgufError(
            f"{p} is truncated: its tensors need {header.data_end:,} bytes but the file has "
            f"{size:,} (an interrupted download?): download it again"
        )

    meta = header.metadata
    arch = meta.get("general.architecture")
    if not isinstance(arch, str) or not arch:
        raise GgufError(f"{p} has no general.architecture: it is not a llama.cpp model file")
    tags = tuple(t for t in header.arrays.get("general.tags", []) if isinstance(t, str))
    template = meta.get("tokenizer.chat_template")
    template = template if isinstance(template, str) and template.strip() else None
    name = meta.get("general.name")
    basename = meta.get("general.basename")
    info = GgufInfo(
        path=p,
        size_bytes=size,
        architecture=arch,
        name=name if isinstance(name, str) else None,
        basename=basename if isinstance(basename, str) else None,
        context_length=_int_or_none(meta.get(f"{arch}.context_length")),
        block_count=_int_or_none(meta.get(f"{arch}.block_count")),
        is_hybrid=_is_hybrid(arch, meta),
        fim_tokens={t: header.fim_tokens[t] for t in FIM_TOKEN_TEXTS if t in header.fim_tokens},
        has_chat_template=template is not None,
        chat_template=template,
        quantization=_quantization(p, meta),
        fim_trained_hint=_fim_hint(p, meta, tags),
        gguf_version=header.version,
        tensor_count=header.tensor_count,
        vocab_size=header.array_lengths.get(_TOKENS_KEY),
        split_count=_int_or_none(meta.get("split.count")) or 1,
        tags=tags,
        metadata=meta,
    )
    log.debug("read %s: %s", p, info)
    return info


def split_parts(path: Path) -> list[Path] | None:
    """All files of a split model given its first part, or None if `path` is not split.

    `Qwen-00001-of-00003.gguf` -> the paths of parts 1, 2 and 3 (which may not exist).
    """
    match = _SPLIT_IN_NAME.search(path.name)
    if not match:
        return None
    total = int(match.group(2))
    stem = path.name[: match.start()]
    return [path.with_name(f"{stem}-{i:05d}-of-{total:05d}.gguf") for i in range(1, total + 1)]


def split_index(path: Path) -> int | None:
    """1-based part number of a split model file (from its name), None when not split."""
    match = _SPLIT_IN_NAME.search(path.name)
    return int(match.group(1)) if match else None
