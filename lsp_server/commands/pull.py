"""`qwen-lsp pull`: download a Qwen3.6-27B GGUF into the models folder.

Downloads go through huggingface_hub (an optional extra, `pip install 'qwen-lsp[pull]'`)
so users get its resumable downloads, progress bar, proxy and token handling. The file
lands in `default_models_dir()`, where `resolve_model` finds it without any setting.
"""

from __future__ import annotations

import argparse
import logging
import re
import shutil
import sys
from pathlib import Path
from typing import Any

from lsp_server.engine.gguf_info import GgufError, read_gguf_info, split_parts
from lsp_server.engine.models import (
    DEFAULT_QUANT,
    DEFAULT_REPO,
    QUANTS,
    default_models_dir,
    gguf_filename,
)

log = logging.getLogger(__name__)

INSTALL_HINT = "pip install 'qwen-lsp[pull]'"
EXIT_FAILED = 1
EXIT_MISSING_DEPENDENCY = 2
EXIT_INTERRUPTED = 130

_QUANT_PATTERN = re.compile(r"^[A-Za-z0-9_-]+$")


def _quant(value: str) -> str:
    if not _QUANT_PATTERN.match(value):
        raise argparse.ArgumentTypeError(f"not a quantization name: {value!r}")
    return value.upper()


def _class_names(exc: BaseException) -> set[str]:
    return {cls.__name__ for cls in type(exc).__mro__}


# Matched by class name, not imported: the exception classes moved between
# huggingface_hub versions (utils -> errors) and it may use requests or httpx.
_NETWORK_ERRORS = {
    "LocalEntryNotFoundError",  # raised when the hub cannot be reached and nothing is cached
    "OfflineModeIsEnabled",
    "ConnectionError",
    "ConnectError",
    "ConnectTimeout",
    "ReadTimeout",
    "Timeout",
    "TimeoutError",
    "TimeoutException",
    "ProxyError",
    "TransportError",
}


def _root_cause(exc: BaseException) -> BaseException:
    seen: set[int] = set()
    while id(exc) not in seen:
        seen.add(id(exc))
        nxt = exc.__cause__ or exc.__context__
        if nxt is None:
            break
        exc = nxt
    return exc


def describe_download_error(
    exc: BaseException, repo: str, filename: str, dest: Path | None = None
) -> str:
    """A message saying what went wrong with a download and what to do about it."""
    names = _class_names(exc)
    page = f"https://huggingface.co/{repo}"
    if "GatedRepoError" in names:
        return (
            f"{repo} requires accepting its terms: open {page}, accept them, then log in "
            "with `hf auth login` (or set HF_TOKEN) and run the command again"
        )
    if "RepositoryNotFoundError" in names:
        return f"repository {repo} not found on huggingface.co (or private): check --repo"
    if "RevisionNotFoundError" in names:
        return f"{repo} has no such revision: {exc}"
    if names & _NETWORK_ERRORS:
        if "OfflineModeIsEnabled" in names:
            return "HF_HUB_OFFLINE is set, so nothing can be downloaded: unset it and retry"
        cause = _root_cause(exc)
        return (
            f"cannot reach huggingface.co ({type(cause).__name__}: {cause}): check your "
            f"network or proxy (HTTPS_PROXY), or download {page}/resolve/main/{filename} "
            f"by hand into {dest or default_models_dir()}"
        )
    if names & {"EntryNotFoundError", "RemoteEntryNotFoundError"}:
        return (
            f"{repo} has no file {filename}: see the files at {page}/tree/main and pass "
            "--quant or --file with one of them"
        )
    if isinstance(exc, OSError) and not names & {"HfHubHTTPError", "HTTPError"}:
        return f"cannot write the file: {exc}"
    return f"download failed: {exc}"


def _download(hub: Any, repo: str, filename: str, dest: Path, force: bool) -> Path:
    # local_dir puts the real file under dest (not a symlink into the HF cache), and
    # huggingface_hub resumes an interrupted download from dest/.cache/huggingface.
    return Path(
        hub.hf_hub_download(
            repo_id=repo, filename=filename, local_dir=str(dest), force_download=force
        )
    )


def _check_space(dest: Path, quant: str | None) -> None:
    known = QUANTS.get(quant or "")
    if known is None:
        return
    try:
        free = shutil.disk_usage(dest).free
    except OSError:
        return
    if free < known.size_gb * 1e9:
        log.warning(
            "only %.1f GB free in %s; %s needs about %.1f GB",
            free / 1e9,
            dest,
            quant,
            known.size_gb,
        )


def run(args: argparse.Namespace) -> int:
    """The `pull` command: 0 on success, 1 on a failed download, 2 without huggingface_hub."""
    repo: str = args.repo
    filename: str = args.file or gguf_filename(args.quant)
    if args.file and args.quant != DEFAULT_QUANT:
        log.warning("--file %s given: ignoring --quant %s", args.file, args.quant)
    dest = Path(args.dest).expanduser() if args.dest else default_models_dir()
    target = dest / filename
    names = [p.name for p in (split_parts(Path(filename)) or [])] or [filename]
    # Keep a subfolder in --file (some repos keep big quants in folders).
    names = [str(Path(filename).parent / n) for n in names]

    if target.is_file() and not args.force:
        try:
            read_gguf_info(target)
        except GgufError as exc:
            log.info("re-downloading: %s", exc)
        else:
            print(f"Already downloaded: {target}")
            return 0

    try:
        import huggingface_hub as hub
    except ImportError:
        print("qwen-lsp pull needs huggingface_hub. Install it with:", file=sys.stderr)
        print(INSTALL_HINT, file=sys.stderr)
        return EXIT_MISSING_DEPENDENCY

    try:
        dest.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        print(f"error: cannot create {dest}: {exc}", file=sys.stderr)
        return EXIT_FAILED
    _check_space(dest, None if args.file else args.quant)
    print(f"Downloading {repo}/{filename} into {dest}", file=sys.stderr)
    path = target
    try:
        for i, name in enumerate(names):
            downloaded = _download(hub, repo, name, dest, args.force)
            if i == 0:
                path = downloaded
    except KeyboardInterrupt:
        print("\ninterrupted: run the same command again to resume", file=sys.stderr)
        return EXIT_INTERRUPTED
    except Exception as exc:  # huggingface_hub raises many types; each gets a message
        log.debug("download failed", exc_info=True)
        print(f"error: {describe_download_error(exc, repo, filename, dest)}", file=sys.stderr)
        return EXIT_FAILED

    try:
        info = read_gguf_info(path)
    except GgufError as exc:
        print(f"error: the downloaded file is unusable: {exc}", file=sys.stderr)
        return EXIT_FAILED
    print(path)
    if dest.resolve() != default_models_dir().resolve():
        print(
            f"Set qwenLsp.model.path to {path} (it is outside the default models folder).",
            file=sys.stderr,
        )
    print(
        f"Done: {info.architecture}, {info.size_gb:.1f} GB. Check with: qwen-lsp doctor",
        file=sys.stderr,
    )
    return 0


def register(subparsers: Any) -> None:
    """Add `pull` to the `qwen-lsp` command line."""
    sizes = ", ".join(f"{q.name} ≈{q.size_gb:g} GB ({q.gpu})" for q in QUANTS.values())
    parser = subparsers.add_parser(
        "pull",
        help="download the Qwen3.6-27B GGUF model (needs huggingface_hub)",
        description=f"Download a GGUF from Hugging Face into {default_models_dir()}, where the "
        f"server finds it. Quants: {sizes}. Needs: {INSTALL_HINT}",
    )
    parser.add_argument(
        "--quant",
        type=_quant,
        default=DEFAULT_QUANT,
        metavar="QUANT",
        help=f"quantization to download (default {DEFAULT_QUANT}; IQ4_XS for 16 GB GPUs; "
        f"also {', '.join(q for q in QUANTS if q not in (DEFAULT_QUANT, 'IQ4_XS'))}, ...)",
    )
    parser.add_argument(
        "--repo", default=DEFAULT_REPO, metavar="ID", help=f"HF repository (default {DEFAULT_REPO})"
    )
    parser.add_argument(
        "--file",
        metavar="NAME",
        help="file in the repository (default Qwen3.6-27B-<QUANT>.gguf); for a split model "
        "name the -00001-of-0000N part and all parts are fetched",
    )
    parser.add_argument(
        "--dest",
        metavar="DIR",
        help="download folder (default: the models folder searched by the server)",
    )
    parser.add_argument(
        "--force", action="store_true", help="download again even if the file is already there"
    )
    parser.set_defaults(func=run)
