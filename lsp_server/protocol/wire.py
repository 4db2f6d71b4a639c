"""LSP's base protocol: messages framed by ``Content-Length`` on stdio or TCP.

pygls's read loop trusts the header: ``Content-Length: 100000000000000000000`` raised
OverflowError and ``1000000000000`` MemoryError inside it, and either ended the server;
a body that is not JSON was logged and never answered. This loop reads the stream in
chunks into a buffer of its own, so that:

- a message longer than the bound (``protocol.maxMessageMb``) is never held in memory:
  its bytes are skipped as they arrive, the request is answered with an error when its
  first bytes name its id, and the user is told once;
- a header block that cannot be read (no length, a length that is not a number, a runaway
  line) is skipped up to the next ``Content-Length:`` line, so the messages after it are
  read as usual. Raw CR LF never occurs inside a JSON body (strings escape it), so a
  ``Content-Length: N`` line followed by CR LF marks the start of a real header;
- a body that is not JSON gets JSON-RPC's ParseError (-32700), one that is JSON but not a
  message InvalidRequest (-32600), both with a null id as the specification says.
"""

from __future__ import annotations

import asyncio
import io
import json
import logging
import re
import sys
import threading
import typing
from collections.abc import Awaitable, Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any, BinaryIO

from pygls.protocol import JsonRPCProtocol

log = logging.getLogger(__name__)

CHUNK = 1 << 16
MAX_HEADER_BYTES = 8192  # LSP headers are two short lines
DEFAULT_MAX_MESSAGE_BYTES = 256 << 20
# Where the start of the next header is looked for after bytes that cannot be read.
_HEADER_START = re.compile(rb"content-length[ \t]*:[ \t]*\d+[ \t]*\r\n", re.I)
_LENGTH = re.compile(rb"[ \t]*(\d+)[ \t]*", re.I)
# The id of a request that was dropped, from its first bytes (before its params).
_ID = re.compile(rb'"id"\s*:\s*(-?\d{1,18}|"(?:[^"\\]|\\.){0,200}")')
_URI = re.compile(rb'"uri"\s*:\s*"([^"\\]{1,4000})"')
_METHOD = re.compile(rb'"method"\s*:\s*"([^"\\]{1,200})"')
# What a protocol's `structure_message` returns for a message it has already answered.
ANSWERED = object()
PARSE_ERROR = -32700
INVALID_REQUEST = -32600


@dataclass(frozen=True, slots=True)
class Oversized:
    """A message skipped for its size: its length and first bytes (for its id)."""

    length: int
    head: bytes

    def request_id(self) -> int | str | None:
        """The id of the request, if its first bytes name one before its params."""
        head = self.head.split(b'"params"', 1)[0]
        match = _ID.search(head)
        if match is None:
            return None
        try:
            value = json.loads(match.group(1))
        except ValueError:
            return None
        return value if isinstance(value, (int, str)) else None

    def uri(self) -> str:
        """The document's URI, if the first bytes name one."""
        match = _URI.search(self.head)
        return match.group(1).decode("utf-8", "replace") if match else ""

    def method(self) -> str:
        match = _METHOD.search(self.head.split(b'"params"', 1)[0])
        return match.group(1).decode("utf-8", "replace") if match else "?"


class Framer:
    """Cuts a byte stream into message bodies. ``read(n)`` gives up to n bytes, b"" at
    the end of the stream; ``max_bytes()`` is the bound at the time a header is read."""

    def __init__(
        self, read: Callable[[int], Awaitable[bytes]], max_bytes: Callable[[], int]
    ) -> None:
        self._read = read
        self._max_bytes = max_bytes
        self._buffer = bytearray()
        self._eof = False
        self.skipped = 0  # bytes skipped while resynchronising (for the log and tests)

    async def _fill(self) -> bool:
        if self._eof:
            return False
        chunk = await self._read(CHUNK)
        if not chunk:
            self._eof = True
            return False
        self._buffer += chunk
        return True

    async def next(self) -> bytes | Oversized | None:
        """The next body, an ``Oversized`` message skipped, or None at the end."""
        while True:
            end = self._buffer.find(b"\r\n\r\n")
            if end < 0:
                if len(self._buffer) > MAX_HEADER_BYTES:
                    log.warning("a header block over %d bytes: skipped", MAX_HEADER_BYTES)
                    await self._resync(1)
                    continue
                if not await self._fill():
                    if self._buffer.strip():
                        log.warning("the stream ended inside a header: ignored")
                    return None
                continue
            length = _content_length(bytes(self._buffer[:end]))
            if length is None:
                log.warning(
                    "a message header without a readable Content-Length (%r): skipped",
                    bytes(self._buffer[: min(end, 80)]),
                )
                await self._resync(1)
                continue
            del self._buffer[: end + 4]
            if length > self._max_bytes():
                return await self._skip(length)
            while len(self._buffer) < length:
                if not await self._fill():
                    return None
            body = bytes(self._buffer[:length])
            del self._buffer[:length]
            return body

    async def _skip(self, length: int) -> Oversized:
        """Drop a message too long to hold: its declared bytes, or fewer when the next
        header shows up first (a length that lied)."""
        if not self._buffer:  # (no waiting for more: the client may be waiting for us)
            await self._fill()
        head = bytes(self._buffer[: min(4096, length)])
        if (after := _HEADER_START.search(head)) is not None:  # the next message's
            head = head[: after.start()]
        await self._resync(0, limit=length)
        return Oversized(length, head)

    async def _resync(self, start: int, limit: int | None = None) -> None:
        """Drop bytes up to the next header start at or after ``start`` (or up to
        ``limit`` bytes, when a length is known), reading as needed."""
        dropped = 0
        pos = start
        while True:
            match = _HEADER_START.search(self._buffer, pos)
            if match is not None and (limit is None or dropped + match.start() <= limit):
                cut = match.start()
                break
            if limit is not None and dropped + len(self._buffer) >= limit:
                cut = limit - dropped
                break
            # Keep a tail that may hold the beginning of a header split across reads.
            keep = min(len(self._buffer), 64)
            cut = len(self._buffer) - keep
            dropped += cut
            del self._buffer[:cut]
            pos = 0
            if not await self._fill():
                dropped += len(self._buffer)
                self._buffer.clear()
                self.skipped += dropped
                return
        del self._buffer[:cut]
        self.skipped += dropped + cut


def _content_length(header: bytes) -> int | None:
    length = None
    for line in header.split(b"\r\n"):
        name, sep, value = line.partition(b":")
        if not sep:
            return None
        if name.strip().lower() == b"content-length":
            match = _LENGTH.fullmatch(value)
            if match is None or len(match.group(1)) > 30:
                return None
            length = int(match.group(1))
    return length


def handle_body(protocol: JsonRPCProtocol, body: bytes) -> None:
    """Hand one body to the protocol; what is not a message is answered as JSON-RPC says."""
    try:
        message = json.loads(body, object_hook=protocol.structure_message)
    except (ValueError, RecursionError) as exc:  # JSONDecodeError, UnicodeDecodeError
        log.warning("a message that is not JSON (%s): answered with ParseError", exc)
        _send_error(protocol, None, PARSE_ERROR, "Parse error: the message is not JSON")
        return
    except Exception:  # a message pygls cannot structure, already logged by it
        return
    if message is ANSWERED:
        return
    if not hasattr(message, "jsonrpc"):
        log.warning("a JSON value that is not a JSON-RPC message: answered with an error")
        _send_error(protocol, None, INVALID_REQUEST, "Invalid Request: not a JSON-RPC message")
        return
    try:
        protocol.handle_message(message)
    except Exception as exc:
        log.exception("error handling a message")
        protocol._server._report_server_error(exc, type(exc))  # type: ignore[arg-type]


def _send_error(protocol: JsonRPCProtocol, ident: Any, code: int, text: str) -> None:
    protocol._send_data({"jsonrpc": "2.0", "id": ident, "error": {"code": code, "message": text}})


def oversized(protocol: JsonRPCProtocol, message: Oversized, bound: int) -> None:
    """Answer (a request) or note (a notification) a message dropped for its size."""
    ident = message.request_id()
    mb = bound / (1 << 20)
    text = (
        f"a {message.method()} message of {message.length} bytes is over "
        f"protocol.maxMessageMb ({mb:g} MB): dropped"
    )
    log.warning("%s", text)
    if ident is not None:
        _send_error(protocol, ident, INVALID_REQUEST, text)
    on_oversized = getattr(protocol, "on_oversized", None)
    if on_oversized is not None:
        on_oversized(message, text)


async def read_loop(
    protocol: JsonRPCProtocol,
    read: Callable[[int], Awaitable[bytes]],
    stop: threading.Event,
    max_bytes: Callable[[], int],
) -> None:
    """Read and handle messages until the stream ends or ``stop`` is set."""
    framer = Framer(read, max_bytes)
    while not stop.is_set():
        frame = await framer.next()
        if frame is None:
            break
        if isinstance(frame, Oversized):
            oversized(protocol, frame, max_bytes())
        else:
            handle_body(protocol, frame)
        # Let the handlers just started take their first step before the next message
        # (a burst read in one chunk would otherwise run before any of them).
        await asyncio.sleep(0)


class StdoutWriter:
    """pygls's writer interface over stdout."""

    def __init__(self, stdout: BinaryIO) -> None:
        self._stdout = stdout
        self._gone = False

    def close(self) -> None:
        self._stdout.close()

    def write(self, data: bytes) -> None:
        if (
            self._stdout.closed or self._gone
        ):  # after `exit`: the answer of a request cancelled by it
            return
        try:
            self._stdout.write(data)
            self._stdout.flush()
        except BrokenPipeError:
            # The editor quit (`:qa`) with answers on their way: no error, and no tracebacks
            # from pygls for each of them; the read loop ends on the closed stdin.
            self._gone = True


def serve_stdio(server: Any, max_bytes: Callable[[], int]) -> int:
    """Serve one client on stdin/stdout; the exit code (``exit`` without ``shutdown``
    gives 1, as LSP says)."""
    stop = threading.Event()
    server._stop_event = stop
    stdin = typing.cast(io.BufferedReader, sys.stdin.buffer)
    server.protocol.set_writer(StdoutWriter(sys.stdout.buffer))
    reader = ThreadPoolExecutor(1, thread_name_prefix="qwen-lsp-stdin")

    async def main() -> None:
        loop = asyncio.get_running_loop()

        def read(n: int) -> Awaitable[bytes]:
            return loop.run_in_executor(reader, stdin.read1, n)

        await read_loop(server.protocol, read, stop, max_bytes)

    try:
        asyncio.run(main())
        return 0
    except SystemExit as exc:  # `exit`: pygls raises it from the loop
        return exc.code if isinstance(exc.code, int) else 0
    except (BrokenPipeError, KeyboardInterrupt):
        return 0
    finally:
        reader.shutdown(wait=False, cancel_futures=True)
        server.shutdown()


def serve_tcp(
    server: Any,
    host: str,
    port: int,
    max_bytes: Callable[[], int],
    on_listen: Callable[[str], None],
) -> int:
    """Serve TCP clients on ``host:port`` until one of them ends (``exit`` or EOF);
    ``on_listen`` gets the address really bound (port 0 asks the system for one)."""
    stop = threading.Event()
    server._stop_event = stop

    async def main() -> None:
        done = asyncio.get_running_loop().create_future()

        async def connection(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            server.protocol.set_writer(writer)
            try:
                await read_loop(server.protocol, reader.read, stop, max_bytes)
            finally:
                if not done.done():
                    done.set_result(None)

        listener = await asyncio.start_server(connection, host, port)
        names = [sock.getsockname() for sock in listener.sockets]
        on_listen(", ".join(f"{n[0]}:{n[1]}" for n in names))
        async with listener:
            await done

    try:
        asyncio.run(main())
        return 0
    except SystemExit as exc:
        return exc.code if isinstance(exc.code, int) else 0
    except KeyboardInterrupt:
        return 0
    finally:
        server.shutdown()
