"""`qwen-lsp doctor`: check the installation and say how to fix what is wrong.

Each check is a plain function returning `Check` (testable without a subprocess); the
command prints them as `ok|warn|FAIL  <what>` lines, each not-ok line followed by the
exact command or setting that fixes it, or as one JSON object with `--json`. A failed
required check (Python, llama-cpp-python, the model) makes the exit code 1; warnings
(CPU-only build, missing grammars) do not.
"""

from __future__ import annotations

import argparse
import ctypes
import importlib
import json
import logging
import os
import platform
import re
import shutil
import sys
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from lsp_server.engine.gguf_info import GgufInfo, split_parts
from lsp_server.engine.models import ModelResolution, how_to_get_model, resolve_model
from lsp_server.settings import ModelSettings

if TYPE_CHECKING:  # (imported only where a serving engine is checked)
    from lsp_server.engine.remote import RemoteConfig

log = logging.getLogger(__name__)

Status = Literal["ok", "warn", "fail"]

MIN_PYTHON = (3, 10)
# The first llama-cpp-python whose vendored llama.cpp knows the `qwen35` architecture.
MIN_LLAMA_CPP = (0, 3, 36)
LLAMA_CPP_SPEC = "llama-cpp-python>=0.3.36"

# Grammar modules the context index uses, with the function(s) giving each language.
GRAMMAR_MODULES: dict[str, tuple[str, ...]] = {
    "tree_sitter_python": ("language",),
    "tree_sitter_javascript": ("language",),
    "tree_sitter_typescript": ("language_typescript", "language_tsx"),
    "tree_sitter_go": ("language",),
    "tree_sitter_rust": ("language",),
    "tree_sitter_java": ("language",),
    "tree_sitter_c": ("language",),
    "tree_sitter_cpp": ("language",),
    "tree_sitter_lua": ("language",),
}


@dataclass(frozen=True)
class Check:
    """The outcome of one check."""

    name: str
    status: Status
    detail: str
    fix: str = ""
    """The command or setting that fixes a non-ok check (empty when ok)."""


@dataclass(frozen=True)
class Report:
    """All checks of one `doctor` run."""

    checks: list[Check]
    model: GgufInfo | None = None

    @property
    def ok(self) -> bool:
        """True when no required check failed (warnings allowed)."""
        return all(c.status != "fail" for c in self.checks)


def _version_tuple(text: str) -> tuple[int, ...]:
    """Leading numeric components: "0.3.36" -> (0, 3, 36), "0.4.0rc1" -> (0, 4, 0)."""
    parts: list[int] = []
    for piece in text.split("."):
        match = re.match(r"\d+", piece)
        if match is None:
            break
        parts.append(int(match.group(0)))
        if match.end() != len(piece):
            break
    return tuple(parts)


def check_python(version: Sequence[int] | None = None) -> Check:
    """Python must be at least 3.10."""
    v = tuple(version if version is not None else sys.version_info[:3])
    text = ".".join(map(str, v[:3]))
    if v[:2] >= MIN_PYTHON:
        return Check("Python", "ok", f"Python {text}")
    return Check(
        "Python",
        "fail",
        f"Python {text} is too old; qwen-lsp needs 3.10 or newer",
        "install Python 3.10+ (e.g. `uv python install 3.12`) and reinstall qwen-lsp with it",
    )


def gpu_install_command(system: str | None = None, machine: str | None = None) -> str:
    """The command that reinstalls llama-cpp-python with GPU support on this platform."""
    system = system or platform.system()
    machine = (machine or platform.machine()).lower()
    flags = "--force-reinstall --no-cache-dir llama-cpp-python"
    if system == "Darwin":
        # Metal is on by default for arm64 macOS builds; a CPU-only build there usually
        # means an x86_64 Python running under Rosetta or a build with Metal turned off.
        return f'CMAKE_ARGS="-DGGML_METAL=on" pip install {flags}'
    if system == "Windows":
        return f'$env:CMAKE_ARGS="-DGGML_CUDA=on"; pip install {flags}'
    return f'CMAKE_ARGS="-DGGML_CUDA=on" pip install {flags}'


def _import_llama_cpp() -> tuple[Any | None, str]:
    try:
        return importlib.import_module("llama_cpp"), ""
    except ImportError as exc:
        if getattr(exc, "name", None) == "llama_cpp":
            return None, "missing"
        return None, str(exc)
    except (OSError, RuntimeError) as exc:  # the shared library failed to load
        return None, str(exc)


def check_llama_cpp(module: Any | None = None, error: str = "") -> Check:
    """llama-cpp-python must be importable and at least 0.3.36 (for `qwen35`)."""
    if module is None and not error:
        module, error = _import_llama_cpp()
    if module is None:
        if error == "missing":
            return Check(
                "llama-cpp-python",
                "fail",
                "llama-cpp-python is not installed",
                f"pip install '{LLAMA_CPP_SPEC}'   (for a GPU build: {gpu_install_command()})",
            )
        return Check(
            "llama-cpp-python",
            "fail",
            f"llama-cpp-python is installed but does not load: {error}",
            gpu_install_command().replace("llama-cpp-python", f"'{LLAMA_CPP_SPEC}'"),
        )
    version = str(getattr(module, "__version__", "0"))
    if _version_tuple(version) < MIN_LLAMA_CPP:
        return Check(
            "llama-cpp-python",
            "fail",
            f"llama-cpp-python {version} is too old: Qwen3.6 (architecture qwen35) "
            f"needs {'.'.join(map(str, MIN_LLAMA_CPP))} or newer",
            f"pip install --upgrade '{LLAMA_CPP_SPEC}'   (for a GPU build: "
            f"{gpu_install_command().replace('llama-cpp-python', repr(LLAMA_CPP_SPEC))})",
        )
    return Check("llama-cpp-python", "ok", f"llama-cpp-python {version}")


def check_gpu_offload(
    module: Any | None, system: str | None = None, machine: str | None = None
) -> Check:
    """Whether this llama-cpp-python build can offload layers to a GPU (warn if not)."""
    if module is None:
        return Check("GPU offload", "warn", "unknown: llama-cpp-python is not available")
    try:
        supported = bool(module.llama_supports_gpu_offload())
    except Exception as exc:  # an old or odd build: report, don't crash the doctor
        return Check("GPU offload", "warn", f"cannot tell: {exc}", gpu_install_command())
    if supported:
        return Check("GPU offload", "ok", "this llama-cpp-python build can use the GPU")
    system = system or platform.system()
    machine = (machine or platform.machine()).lower()
    detail = "this llama-cpp-python build is CPU-only: a 27B model will be very slow"
    if system == "Darwin" and machine == "x86_64":
        detail += " (on Apple Silicon, check that Python itself is arm64, not x86_64)"
    elif shutil.which("nvidia-smi"):
        detail += " (an NVIDIA GPU is present: nvidia-smi is on PATH)"
    return Check("GPU offload", "warn", detail, gpu_install_command(system, machine))


def format_size(size_bytes: int) -> str:
    """A file size as download sites show it (GB/MB of 10^9/10^6 bytes)."""
    if size_bytes >= 1e9:
        return f"{size_bytes / 1e9:.1f} GB"
    if size_bytes >= 1e6:
        return f"{size_bytes / 1e6:.1f} MB"
    return f"{size_bytes / 1e3:.1f} kB"


def _describe_model(info: GgufInfo) -> str:
    parts = [format_size(info.size_bytes)]
    if info.quantization:
        parts.append(info.quantization)
    if info.split_count > 1:
        parts.append(f"split in {info.split_count} files")
    return f"{info.path} ({', '.join(parts)})"


def check_model(model: str | None = None) -> tuple[Check, GgufInfo | None]:
    """Find the model (an explicit path or the default search) and read its header."""
    checks, info = check_model_all(model)
    return checks[0], info


def check_model_all(model: str | None = None) -> tuple[list[Check], GgufInfo | None]:
    """`check_model`, plus a warning for each unusable model file met on the way."""
    resolution = resolve_model(model or "")
    # When nothing was found the failure already lists the unusable files.
    skipped = [
        Check("model candidate", "warn", f"skipped: {reason}", "delete or re-download it")
        for reason in (resolution.skipped if resolution.path else [])
    ]
    check, info = _model_check(model, resolution)
    return [check, *skipped], info


def _model_check(model: str | None, resolution: ModelResolution) -> tuple[Check, GgufInfo | None]:
    if resolution.path is None or resolution.info is None:
        if model:
            fix = "pass --model with the path of a valid .gguf file, or run `qwen-lsp pull`"
            return Check("model", "fail", resolution.message, fix), None
        # The message lists where we looked, then how to get the model: that part is the fix.
        howto = how_to_get_model()
        detail = resolution.message.replace(howto, "").strip()
        return Check("model", "fail", detail, howto), None
    info = resolution.info
    source = {"setting": "--model", "models-dir": "default models folder", "hf-cache": "HF cache"}
    detail = f"{_describe_model(info)}, from the {source.get(resolution.source, 'search')}"
    if resolution.source == "setting":
        detail = f"{_describe_model(info)}"
    return Check("model", "ok", detail), info


def check_model_metadata(info: GgufInfo, context_size: int | None = None) -> Check:
    """Architecture, layers, trained context and whether the cache needs checkpoints."""
    default = context_size is None
    context_size = context_size if context_size is not None else ModelSettings().context_size
    kind = "hybrid/recurrent: the cache is checkpointed" if info.is_hybrid else "attention only"
    ctx = f"{info.context_length:,}" if info.context_length else "unknown"
    name = info.name or info.basename or info.path.stem
    detail = (
        f"{name}: architecture {info.architecture} ({kind}), "
        f"{info.block_count or '?'} layers, trained context {ctx} tokens"
    )
    if info.context_length and context_size > info.context_length:
        return Check(
            "model metadata",
            "warn",
            f"{detail}; qwenLsp.model.contextSize ({context_size:,}"
            f"{', the default' if default else ''}) is longer",
            f"set qwenLsp.model.contextSize to {info.context_length} or less",
        )
    return Check("model metadata", "ok", detail)


def check_prompt_format(info: GgufInfo) -> Check:
    """Which prompt `completion.promptFormat = auto` will use, and whether it can work."""
    fim = ", ".join(info.fim_tokens) if info.fim_tokens else "none"
    template = "yes" if info.has_chat_template else "no"
    detail = f"chat template: {template}; FIM tokens: {fim}"
    if info.has_fim_tokens and info.fim_trained_hint:
        return Check("prompt format", "ok", f"{detail} -> FIM prompt (a coder model)")
    if info.has_chat_template:
        why = "the model is not FIM-trained" if info.has_fim_tokens else "no FIM tokens"
        return Check("prompt format", "ok", f"{detail} -> chat prompt ({why})")
    if info.has_fim_tokens:
        return Check(
            "prompt format",
            "warn",
            f"{detail}; FIM tokens but no chat template and nothing says it is FIM-trained",
            'set qwenLsp.completion.promptFormat to "fim" if the model was trained for it',
        )
    return Check(
        "prompt format",
        "warn",
        f"{detail}: neither a chat template nor FIM tokens, completions will be poor",
        "use a Qwen3.6-27B GGUF (qwen-lsp pull) or a coder model with FIM tokens",
    )


def check_model_files(info: GgufInfo) -> Check | None:
    """For a split model, all its parts must sit next to the first one."""
    parts = split_parts(info.path)
    if not parts:
        return None
    missing = [p.name for p in parts if not p.is_file()]
    if missing:
        return Check(
            "model parts",
            "fail",
            f"missing parts of the split model: {', '.join(missing)}",
            f"download them into {info.path.parent}",
        )
    return Check("model parts", "ok", f"all {len(parts)} parts present")


_LOG_CALLBACK_REFS: list[Any] = []
# ggml.h: NONE 0, DEBUG 1, INFO 2, WARN 3, ERROR 4, CONT 5 (llama-cpp-python's own
# _logger.py still documents an older numbering).
_GGML_LOG_LEVEL_ERROR = 4


def check_model_load(path: Path, module: Any | None) -> Check:
    """Ask llama.cpp to load the file's vocabulary and hyperparameters (no weights).

    This proves the installed llama.cpp knows the architecture. The low-level loader is
    used with `vocab_only`, so no context or compute buffers are created: it takes about
    a second even for the 27B model.
    """
    if module is None:
        return Check("model load", "fail", "cannot try: llama-cpp-python is not available")
    errors: list[str] = []
    low = module.llama_cpp

    # llama.cpp reports why a load failed only through its log; capture it instead of
    # letting it spill onto stderr, and put the library's own handler back afterwards.
    @low.llama_log_callback  # type: ignore[untyped-decorator]
    def capture(level: int, text: bytes, user_data: Any) -> None:
        if level == _GGML_LOG_LEVEL_ERROR:
            errors.append(text.decode("utf-8", errors="replace").strip())

    _LOG_CALLBACK_REFS.append(capture)  # ctypes callbacks must outlive their use
    low.llama_log_set(capture, ctypes.c_void_p(0))
    try:
        low.llama_backend_init()
        params = low.llama_model_default_params()
        params.vocab_only = True
        model = low.llama_model_load_from_file(str(path).encode("utf-8"), params)
        if model:
            low.llama_model_free(model)
    except Exception as exc:  # a broken build: report it as a failed load
        model = None
        errors.append(str(exc))
    finally:
        _restore_llama_log(module)
    if model:
        return Check("model load", "ok", "llama.cpp reads the vocabulary and architecture")
    # "llama_model_load: error loading model: unknown model architecture: 'x'" -> the tail
    reasons = [e.rpartition("error loading model: ")[2] for e in errors if "error loading" in e]
    reason = "; ".join(reasons or [e for e in errors if e]) or "llama.cpp could not load it"
    fix = "run `qwen-lsp doctor` without --load to check the file itself"
    if "unknown model architecture" in reason:
        fix = (
            f"pip install --upgrade '{LLAMA_CPP_SPEC}' (a newer llama.cpp may know this "
            "architecture), or use a model llama.cpp supports"
        )
    return Check("model load", "fail", f"llama.cpp cannot load it: {reason}", fix)


def _restore_llama_log(module: Any) -> None:
    try:
        from llama_cpp import _logger

        module.llama_cpp.llama_log_set(_logger.llama_log_callback, ctypes.c_void_p(0))
    except Exception:  # no default handler to restore in this build
        module.llama_cpp.llama_log_set(None, ctypes.c_void_p(0))


def check_grammars(modules: dict[str, tuple[str, ...]] | None = None) -> Check:
    """The tree-sitter grammars for multi-file context (warn when some are missing)."""
    modules = GRAMMAR_MODULES if modules is None else modules
    try:
        import tree_sitter
    except ImportError:
        return Check(
            "tree-sitter",
            "warn",
            "tree-sitter is not installed: completions get no multi-file context",
            "pip install --force-reinstall qwen-lsp",
        )
    loaded: list[str] = []
    missing: list[str] = []
    broken: list[str] = []
    broken_packages: list[str] = []
    for name, functions in modules.items():
        short = name.removeprefix("tree_sitter_")
        try:
            mod = importlib.import_module(name)
            for fn in functions:
                tree_sitter.Language(getattr(mod, fn)())
        except ImportError:
            missing.append(name.replace("_", "-"))
            continue
        except Exception as exc:  # e.g. an ABI version the installed tree-sitter rejects
            broken.append(f"{short} ({exc})")
            broken_packages.append(name.replace("_", "-"))
            continue
        loaded.append(short)
    if not missing and not broken:
        from context.languages import TEXT_LANGUAGES

        text = ", ".join(TEXT_LANGUAGES)
        return Check("tree-sitter grammars", "ok", f"{', '.join(loaded)}; read as text: {text}")
    problems = []
    fixes = []
    if missing:
        problems.append(f"not installed: {', '.join(missing)}")
        fixes.append(f"pip install {' '.join(missing)}")
    if broken:
        problems.append(f"unusable: {', '.join(broken)}")
        fixes.append(f"pip install --upgrade tree-sitter {' '.join(broken_packages)}")
    detail = "; ".join(problems) + " (no multi-file context for these languages)"
    return Check("tree-sitter grammars", "warn", detail, " && ".join(fixes))


def check_serving_engine(config: RemoteConfig) -> Check:
    """backend "openai": the serving engine answers, serves the model, takes the key."""
    from lsp_server.engine.remote import RemoteEngine
    from lsp_server.engine.types import EngineError

    if not config.url.strip():
        return Check(
            "serving engine",
            "fail",
            'model.backend is "openai" but model.url is not set',
            "set qwenLsp.model.url to the serving engine's API, e.g. http://127.0.0.1:8080/v1",
        )
    try:
        engine = RemoteEngine(config)
    except EngineError as exc:
        return Check(
            "serving engine",
            "fail",
            str(exc),
            "start the serving engine, or fix model.url / model.name / model.apiKey",
        )
    return Check(
        "serving engine",
        "ok",
        f"{engine.model} at {engine.shown_url} ({engine.n_ctx} tokens of context); "
        "prompts (your code) are sent there",
    )


def check_engine(shared: bool, folder: str | None = None) -> Check:
    """The engine processes: the runtime folder usable, which run, the editors attached."""
    from lsp_server.commands.engine import describe
    from lsp_server.engine.client import engine_status
    from lsp_server.engine.endpoint import (
        EngineUnreachable,
        ensure_private_dir,
        runtime_dir,
        supported,
    )

    if not supported():
        return Check("engine", "ok", "the model runs inside each server (no Unix sockets here)")
    folder = folder or runtime_dir()
    try:
        ensure_private_dir(folder)
    except EngineUnreachable as exc:
        return Check("engine", "fail", str(exc), "export QWEN_LSP_RUNTIME_DIR=~/.qwen-lsp-run")
    mode = (
        "shared by your editors (engine.shared)"
        if shared
        else "one per server (engine.shared is off)"
    )
    engines = engine_status(folder)
    if not engines:
        return Check(
            "engine",
            "ok",
            f"{mode}; none running in {folder}: the model is not loaded yet (it loads at "
            "the first completion an editor asks for)",
        )
    return Check("engine", "ok", f"{mode}:\n" + "\n".join(describe(e) for e in engines))


def run_checks(
    model: str | None = None,
    *,
    load: bool = False,
    context_size: int | None = None,
    import_llama: Callable[[], tuple[Any | None, str]] = _import_llama_cpp,
    remote: RemoteConfig | None = None,
) -> Report:
    """Run every check in order; never raises for a broken installation.
    ``context_size``: the user's ``model.contextSize`` (None: the default).
    ``remote``: with model.backend "openai", the serving engine replaces the model checks."""
    checks = [check_python()]
    llama, error = import_llama()
    llama_check = check_llama_cpp(llama, error)
    checks.append(llama_check)
    if remote is not None:
        checks.append(check_serving_engine(remote))
        checks.append(check_grammars())
        return Report(checks, None)
    checks.append(check_gpu_offload(llama))
    model_checks, info = check_model_all(model)
    checks.extend(model_checks)
    if info is not None:
        checks.append(check_model_metadata(info, context_size))
        checks.append(check_prompt_format(info))
        parts = check_model_files(info)
        if parts is not None:
            checks.append(parts)
        if load:
            usable = llama if llama_check.status == "ok" else None
            checks.append(check_model_load(info.path, usable))
    checks.append(check_grammars())
    return Report(checks, info)


_LABELS = {"ok": "ok", "warn": "warn", "fail": "FAIL"}


def format_report(report: Report) -> str:
    """The human-readable form: one `ok|warn|FAIL  what` line per check plus its fix."""
    lines: list[str] = []
    indent = " " * 6
    for c in report.checks:
        detail = c.detail.replace("\n", "\n" + indent)
        lines.append(f"{_LABELS[c.status]:<4}  {c.name}: {detail}")
        if c.status != "ok" and c.fix:
            fix = c.fix.replace("\n", "\n" + indent + "  ")
            lines.append(f"{indent}fix: {fix}")
    failed = sum(c.status == "fail" for c in report.checks)
    warned = sum(c.status == "warn" for c in report.checks)
    if failed:
        lines.append(f"{failed} required check(s) failed: qwen-lsp cannot run until fixed.")
    else:
        note = f" ({warned} warning(s))" if warned else ""
        lines.append(f"Ready to run{note}.")
    return "\n".join(lines)


def report_json(report: Report) -> dict[str, Any]:
    """The `--json` form: {"ok", "checks": [{"name", "status", "detail", "fix"}], "model"}."""
    model: dict[str, Any] | None = None
    if report.model is not None:
        info = report.model
        model = {
            "path": str(info.path),
            "sizeBytes": info.size_bytes,
            "architecture": info.architecture,
            "name": info.name,
            "contextLength": info.context_length,
            "blockCount": info.block_count,
            "isHybrid": info.is_hybrid,
            "fimTokens": dict(info.fim_tokens),
            "hasChatTemplate": info.has_chat_template,
            "quantization": info.quantization,
            "fimTrainedHint": info.fim_trained_hint,
        }
    return {"ok": report.ok, "checks": [asdict(c) for c in report.checks], "model": model}


def run(args: argparse.Namespace) -> int:
    """The `doctor` command; returns 1 when a required check failed (2: bad arguments)."""
    from lsp_server.commands import load_settings_arg
    from lsp_server.settings import ModelSettings

    loaded = load_settings_arg("doctor", args.settings)
    if loaded is None:
        return 2
    model = loaded.settings.model
    context_size = model.context_size
    remote = None
    if model.backend == "openai" and not args.model:
        from lsp_server.engine.remote import RemoteConfig

        remote = RemoteConfig(
            url=model.url,
            model=model.name,
            api_key=model.api_key or os.environ.get("QWEN_LSP_API_KEY", ""),
            n_ctx=context_size,
            allow_insecure_http=model.allow_insecure_http,
        )
    report = run_checks(
        args.model or model.path or None,
        load=args.load,
        context_size=None if context_size == ModelSettings().context_size else context_size,
        remote=remote,
    )
    if remote is None:
        report.checks.append(check_engine(loaded.settings.engine.shared))
    if loaded.errors:
        report.checks.insert(
            0,
            Check(
                "settings",
                "warn",
                "invalid, the defaults apply: " + "; ".join(str(e) for e in loaded.errors),
                "fix these keys (docs/configuration.md)",
            ),
        )
    if args.json:
        print(json.dumps(report_json(report), indent=2))
    else:
        print(format_report(report))
    return 0 if report.ok else 1


def register(subparsers: Any) -> None:
    """Add `doctor` to the `qwen-lsp` command line."""
    parser = subparsers.add_parser(
        "doctor",
        help="check Python, llama-cpp-python, the GPU build, the model and the grammars",
        description="Check the installation and print how to fix what is wrong. "
        "Exits 1 when something required fails; warnings do not fail.",
    )
    parser.add_argument(
        "--model", metavar="GGUF", help="check this model file instead of the one found"
    )
    parser.add_argument(
        "--load",
        action="store_true",
        help="also ask llama.cpp to load the model's vocabulary (proves the architecture "
        "is supported; about a second)",
    )
    parser.add_argument(
        "--settings",
        metavar="JSON",
        help="the settings tree as an editor sends it: model.path and model.contextSize "
        "are checked against the model (--model wins over model.path)",
    )
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    parser.set_defaults(func=run)
