"""Where the model file comes from.

`resolve_model` turns the `model.path` setting into a GGUF file. An explicit path is
used as given (with `~` and environment variables expanded) and never replaced by a
guess: if it is wrong, the user is told exactly what is wrong. Without one, the server
looks in its own models folder (where `qwen-lsp pull` puts files), then in the
Hugging Face cache for Qwen3.6-27B GGUF repositories.
"""

from __future__ import annotations

import logging
import os
import re
from dataclasses import dataclass, field
from pathlib import Path

import platformdirs

from lsp_server.engine.gguf_info import (
    GgufError,
    GgufInfo,
    read_gguf_info,
    split_index,
    split_parts,
)

log = logging.getLogger(__name__)

APP_NAME = "qwen-lsp"
MODEL_BASENAME = "Qwen3.6-27B"
# Unsloth publishes every common quant of the model as one file per quant, named
# `Qwen3.6-27B-<QUANT>.gguf`, and keeps them current with llama.cpp's converter.
DEFAULT_REPO = "unsloth/Qwen3.6-27B-GGUF"
DEFAULT_QUANT = "Q4_K_M"


@dataclass(frozen=True)
class Quant:
    """A quantization users pick from, with the GPU it suits."""

    name: str
    size_gb: float
    """Approximate file size in GB (10^9 bytes)."""
    gpu: str


# Approximate sizes for the 27B model; the KV cache and compute buffers need 1-4 GB more.
QUANTS: dict[str, Quant] = {
    q.name: q
    for q in (
        Quant("Q3_K_M", 13.3, "12-16 GB GPUs, with a short context"),
        Quant("IQ4_XS", 15.0, "16 GB GPUs"),
        Quant("Q4_K_M", 16.5, "24 GB GPUs"),
        Quant("Q5_K_M", 19.2, "24 GB GPUs, slightly better quality"),
        Quant("Q6_K", 22.1, "32 GB GPUs"),
        Quant("Q8_0", 28.6, "40 GB+ GPUs or 32 GB unified memory"),
    )
}

_QWEN_NAME = re.compile(r"qwen3[._-]?6[._-]27b", re.IGNORECASE)
_HF_REPO_DIR = re.compile(r"^models--[^/]+--.*qwen3[._-]?6[._-]27b.*gguf.*$", re.IGNORECASE)


def gguf_filename(quant: str = DEFAULT_QUANT) -> str:
    """The file name of a quant in `DEFAULT_REPO`, e.g. `Qwen3.6-27B-Q4_K_M.gguf`."""
    return f"{MODEL_BASENAME}-{quant}.gguf"


def default_models_dir() -> Path:
    """The folder `qwen-lsp pull` downloads into and that is searched first.

    Linux: `$XDG_DATA_HOME/qwen-lsp/models` (`~/.local/share/...`); macOS:
    `~/Library/Application Support/qwen-lsp/models`; Windows: `%LOCALAPPDATA%\\qwen-lsp\\models`.
    """
    return Path(platformdirs.user_data_dir(APP_NAME, appauthor=False)) / "models"


def hf_cache_dirs() -> list[Path]:
    """Hugging Face hub cache folders to search, most specific first, without duplicates.

    Follows huggingface_hub's own rules: `HF_HUB_CACHE` (or the older
    `HUGGINGFACE_HUB_CACHE`), then `HF_HOME/hub`, then `$XDG_CACHE_HOME/huggingface/hub`
    and `~/.cache/huggingface/hub`.
    """
    candidates: list[Path] = []
    for var in ("HF_HUB_CACHE", "HUGGINGFACE_HUB_CACHE"):
        if os.environ.get(var):
            candidates.append(_expand(os.environ[var]))
    if os.environ.get("HF_HOME"):
        candidates.append(_expand(os.environ["HF_HOME"]) / "hub")
    if os.environ.get("XDG_CACHE_HOME"):
        candidates.append(_expand(os.environ["XDG_CACHE_HOME"]) / "huggingface" / "hub")
    candidates.append(Path.home() / ".cache" / "huggingface" / "hub")
    unique: list[Path] = []
    for c in candidates:
        if c not in unique:
            unique.append(c)
    return unique


@dataclass
class ModelResolution:
    """The outcome of `resolve_model`."""

    path: Path | None
    """The GGUF file to load, or None when there is none (see `message`)."""
    searched: list[str]
    """What was looked at, in order, for the user's benefit."""
    message: str
    """One paragraph for the user: what was picked and why, or what to do."""
    info: GgufInfo | None = None
    """The file's metadata when `path` is set (already read, so callers need not)."""
    source: str = ""
    """"setting", "models-dir" or "hf-cache"; empty when nothing was found."""
    skipped: list[str] = field(default_factory=list)
    """Candidates found but unusable, each with the reason."""


def _expand(value: str) -> Path:
    return Path(os.path.expandvars(os.path.expanduser(value.strip())))


def explicit_model_path(settings_path: str) -> Path | None:
    """The file `model.path` names (variables and ~ expanded), None when it is not set."""
    return _expand(settings_path) if settings_path and settings_path.strip() else None


def how_to_get_model(indent: str = "  ") -> str:
    """The instructions shown whenever no model is found."""
    default = QUANTS[DEFAULT_QUANT]
    small = QUANTS["IQ4_XS"]
    return "\n".join(
        [
            "Get the model with one of:",
            f"{indent}qwen-lsp pull                  "
            f"# {DEFAULT_QUANT} (default), about {default.size_gb:g} GB, for {default.gpu}",
            f"{indent}qwen-lsp pull --quant IQ4_XS   # about {small.size_gb:g} GB, for {small.gpu}",
            "(`pull` needs huggingface_hub: pip install 'qwen-lsp[pull]'), or set "
            "qwenLsp.model.path to a .gguf file you already have.",
        ]
    )


def _check_file(path: Path) -> tuple[GgufInfo | None, str]:
    """Read and vet one candidate; returns (info, "") or (None, the reason)."""
    try:
        info = read_gguf_info(path)
    except GgufError as exc:
        return None, str(exc)
    parts = split_parts(path)
    if parts is not None:
        missing = [p.name for p in parts if not p.is_file()]
        if missing:
            return None, (
                f"{path} is part 1 of a split model but {', '.join(missing)} "
                f"{'is' if len(missing) == 1 else 'are'} missing next to it"
            )
    return info, ""


def _explicit(raw: str) -> ModelResolution:
    path = _expand(raw)
    searched = [str(path)]
    where = f"qwenLsp.model.path is {raw!r}" + (f" (= {path})" if str(path) != raw else "")
    unset_var = re.search(r"\$\{?\w+\}?|%\w+%", str(path))
    if not path.exists():
        hint = f"; the environment variable {unset_var.group(0)} is not set" if unset_var else ""
        message = (
            f"{where}, but no such file exists{hint}. Fix the path in your editor's "
            "settings, or clear it to use a model from `qwen-lsp pull`."
        )
        return ModelResolution(None, searched, message)
    if path.is_dir():
        ggufs = sorted(p.name for p in path.glob("*.gguf"))
        listing = f" It contains: {', '.join(ggufs[:5])}." if ggufs else " It has no .gguf files."
        message = f"{where}, which is a folder; set it to the .gguf file itself.{listing}"
        return ModelResolution(None, searched, message)
    info, reason = _check_file(path)
    if info is None:
        return ModelResolution(None, searched, f"{where}, but it cannot be used: {reason}.")
    return ModelResolution(
        path, searched, f"using {path} (from qwenLsp.model.path)", info, "setting"
    )


def _rank(path: Path, main_snapshot: Path | None = None) -> tuple[int, int, int, str]:
    name = path.name
    return (
        0 if _QWEN_NAME.search(name) else 1,
        0 if DEFAULT_QUANT.lower() in name.lower() else 1,
        0 if main_snapshot is None or main_snapshot in path.parents else 1,
        str(path),
    )


def _is_candidate(path: Path) -> bool:
    name = path.name.lower()
    if "mmproj" in name:  # vision projectors are not language models
        return False
    index = split_index(path)
    return index is None or index == 1


def _models_dir_candidates(folder: Path) -> list[Path]:
    if not folder.is_dir():
        return []
    found = [p for p in folder.rglob("*.gguf") if _is_candidate(p) and p.is_file()]
    return sorted(found, key=_rank)


def _hf_candidates(cache: Path) -> list[Path]:
    if not cache.is_dir():
        return []
    ranked: list[tuple[tuple[int, int, int, str], Path]] = []
    for repo in sorted(cache.iterdir()):
        if not _HF_REPO_DIR.match(repo.name):
            continue
        # Prefer the snapshot `refs/main` points at when several revisions are cached.
        try:
            commit = (repo / "refs" / "main").read_text(encoding="utf-8").strip()
            main: Path | None = repo / "snapshots" / commit if commit else None
        except OSError:
            main = None
        for p in (repo / "snapshots").glob("*/**/*.gguf"):
            if _is_candidate(p) and p.is_file():
                ranked.append((_rank(p, main), p))
    return [p for _, p in sorted(ranked)]


def resolve_model(settings_path: str) -> ModelResolution:
    """Find the GGUF file to load.

    `settings_path` is `model.path` from the settings. When set, that file is used or
    its problem reported (no fallback). When empty, the default models folder is
    searched, then the Hugging Face caches (repositories named like
    `*Qwen3.6-27B*GGUF*`); Qwen3.6-27B files and the default quant are preferred, split
    models count by their first part, vision projectors (mmproj) are skipped, and ties
    are broken by path so the choice is the same on every run.
    """
    if settings_path and settings_path.strip():
        return _explicit(settings_path)

    searched: list[str] = []
    skipped: list[str] = []
    locations: list[tuple[str, Path, list[Path]]] = []
    models_dir = default_models_dir()
    searched.append(f"{models_dir} (*.gguf)")
    locations.append(("models-dir", models_dir, _models_dir_candidates(models_dir)))
    for cache in hf_cache_dirs():
        searched.append(f"{cache} (models--*--*Qwen3.6-27B*GGUF*)")
        locations.append(("hf-cache", cache, _hf_candidates(cache)))

    for source, folder, candidates in locations:
        for candidate in candidates:
            info, reason = _check_file(candidate)
            if info is None:
                log.warning("skipping model candidate: %s", reason)
                skipped.append(reason)
                continue
            where = "the default models folder" if source == "models-dir" else "the HF cache"
            message = f"using {candidate} (found in {where}, {folder})"
            if skipped:
                message += "; skipped: " + "; ".join(skipped)
            return ModelResolution(candidate, searched, message, info, source, skipped)

    lines = ["No GGUF model found. Searched:"]
    lines += [f"  - {s}" for s in searched]
    if skipped:
        lines.append("Found but unusable:")
        lines += [f"  - {s}" for s in skipped]
    lines.append(how_to_get_model())
    return ModelResolution(None, searched, "\n".join(lines), skipped=skipped)
