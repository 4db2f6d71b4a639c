"""The `qwen-lsp` command line.

`qwen-lsp` with no command serves LSP over stdio. Each subcommand lives in its own
module, which adds its parser through a `register(subparsers)` function and sets
`func` (taking the parsed arguments, returning the exit code).
"""

from __future__ import annotations

import argparse
import importlib
import logging
import os
import stat
import sys
from collections.abc import Sequence

from lsp_server import __version__
from lsp_server.redact import redact

# Modules that provide a `register(subparsers)` function, in help order.
COMMAND_MODULES = (
    "lsp_server.commands.complete",
    "lsp_server.commands.context",
    "lsp_server.commands.index",
    "lsp_server.commands.doctor",
    "lsp_server.commands.engine",
    "lsp_server.commands.pull",
)


def setup_logging(level: str = "INFO", log_file: str | None = None) -> None:
    """Log to stderr (stdout is the protocol) and, if asked, to a file."""
    stderr = logging.StreamHandler(sys.stderr)
    handlers: list[logging.Handler] = [stderr]
    if log_file:
        path = os.path.expanduser(log_file)
        # DEBUG logs hold code: readable by the user only, also when the file existed.
        os.close(os.open(path, os.O_CREAT | os.O_WRONLY | os.O_APPEND, 0o600))
        if stat.S_ISREG(os.stat(path).st_mode):  # (not /dev/stderr)
            os.chmod(path, 0o600)
        handlers.append(logging.FileHandler(path, encoding="utf-8"))
        # Editors log each stderr line as an error (Neovim's lsp.log says `[ERROR]` for
        # every one): with the whole log in the file, stderr gets only what needs a look.
        stderr.setLevel(logging.WARNING)
    for handler in handlers:
        handler.addFilter(_redact_keys)
    logging.basicConfig(
        level=getattr(logging, level.upper(), logging.INFO),
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        handlers=handlers,
        force=True,
    )
    from lsp_server.protocol.logs import quiet_pygls

    quiet_pygls(debug=level.upper() == "DEBUG")


def _redact_keys(record: logging.LogRecord) -> bool:
    """No log line shows an API key (pygls's DEBUG dump of `initialize` holds the
    settings, `model.apiKey` included): lsp_server.redact."""
    message = record.getMessage()
    redacted = redact(message)
    if redacted != message:
        record.msg, record.args = redacted, None
    if record.exc_info and record.exc_info[1] is not None:
        text = redact(logging.Formatter().formatException(record.exc_info))
        record.exc_info, record.exc_text = None, None
        record.msg = f"{record.msg}\n{text}"
    return True


def parse_tcp(value: str) -> tuple[str, int]:
    host, sep, port = value.rpartition(":")
    if not sep:
        host, port = "127.0.0.1", value
    try:
        number = int(port)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a port: {port!r}") from None
    if not 0 <= number <= 65535:
        raise argparse.ArgumentTypeError(f"port out of range: {number}")
    return (host.strip("[]") or "127.0.0.1"), number


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="qwen-lsp",
        description="Local AI code completion language server (Qwen3.6 via llama.cpp). "
        "With no command, speaks LSP over stdio.",
    )
    parser.add_argument("--version", action="version", version=f"qwen-lsp {__version__}")
    parser.add_argument(
        "--tcp",
        metavar="[HOST:]PORT",
        type=parse_tcp,
        help="serve LSP over TCP instead of stdio (for debugging: any local user can "
        "connect); host defaults to 127.0.0.1",
    )
    parser.add_argument("--log-file", metavar="PATH", help="also write the log to this file")
    parser.add_argument(
        "--log-level",
        default="INFO",
        choices=["DEBUG", "INFO", "WARNING", "ERROR"],
        type=str.upper,
        help="log level (default INFO)",
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name in COMMAND_MODULES:
        try:
            module = importlib.import_module(name)
        except ImportError as exc:  # a broken optional command must not break the server
            logging.getLogger(__name__).debug("command module %s unavailable: %s", name, exc)
            continue
        module.register(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        setup_logging(args.log_level, args.log_file)
    except OSError as exc:
        print(
            f"qwen-lsp: cannot write the log file {args.log_file}: {exc.strerror}", file=sys.stderr
        )
        return 2
    if args.command:
        return int(args.func(args))
    from lsp_server.protocol.server import serve

    try:
        return serve(tcp=args.tcp)
    except OSError as exc:  # the TCP port in use, an unknown host
        host, port = args.tcp or ("", 0)
        print(f"qwen-lsp: cannot serve on {host}:{port}: {exc.strerror or exc}", file=sys.stderr)
        return 1
