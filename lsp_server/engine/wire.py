"""What the servers and the engine process say to each other over the engine's socket.

One message is a 4-byte big-endian length and that many bytes of JSON (lone surrogates
in the user's text survive: JSON escapes them). Requests carry an `id` and an `op`; the
engine answers each with the same `id` and one of `result`, `cancelled` (with the
figures until then) or `error` (with its `kind`: `load` when the model cannot be loaded).
Messages without an id are the engine's `status` (pushed to every attached server when
it changes).

Stop rules are Python callables in the servers; they cross the socket as their
parameters and are rebuilt here in the engine process (`encode_rule`, `decode_rule`).
A rule this module does not know is applied by the server to the finished text instead
(the same text, only without stopping generation early).
"""

from __future__ import annotations

import dataclasses
import json
import socket
import struct
from collections.abc import Callable
from typing import Any

from lsp_server.engine.types import (
    EngineConfig,
    EngineError,
    Figures,
    Generation,
    ModelInfo,
    Prompt,
    Segment,
)

PROTOCOL = 1
MAX_MESSAGE = 256 << 20  # a 262K-token prompt of long lines is well under this
_HEADER = struct.Struct(">I")

Rule = Callable[[str], "int | None"]


class ConnectionLost(EngineError):
    """The other end closed the connection or sent something unreadable."""


def send(sock: socket.socket, message: dict[str, Any]) -> None:
    data = json.dumps(message, separators=(",", ":")).encode("ascii")
    sock.sendall(_HEADER.pack(len(data)) + data)


def recv(sock: socket.socket) -> dict[str, Any] | None:
    """The next message; None at the end of the stream. ConnectionLost on garbage."""
    header = _read(sock, _HEADER.size)
    if header is None:
        return None
    (size,) = _HEADER.unpack(header)
    if size > MAX_MESSAGE:
        raise ConnectionLost(f"a message of {size} bytes is over the limit")
    body = _read(sock, size)
    if body is None:
        raise ConnectionLost("the connection closed in the middle of a message")
    try:
        message = json.loads(body)
    except ValueError as exc:
        raise ConnectionLost(f"an unreadable message: {exc}") from exc
    if not isinstance(message, dict):
        raise ConnectionLost("a message that is not an object")
    return message


def _read(sock: socket.socket, n: int) -> bytes | None:
    chunks: list[bytes] = []
    got = 0
    while got < n:
        try:
            chunk = sock.recv(min(n - got, 1 << 20))
        except OSError as exc:
            if got == 0 and not chunks:
                return None
            raise ConnectionLost(str(exc)) from exc
        if not chunk:
            if got == 0:
                return None
            raise ConnectionLost("the connection closed in the middle of a message")
        chunks.append(chunk)
        got += len(chunk)
    return b"".join(chunks)


# ---- the engine's types ------------------------------------------------------------------


def prompt_to_wire(prompt: Prompt) -> dict[str, Any]:
    return {
        "format": prompt.format,
        "segments": [
            [s.name, s.text, list(s.specials), s.checkpoint, s.line_checkpoints]
            for s in prompt.segments
        ],
        "stop": list(prompt.stop),
    }


def prompt_from_wire(data: dict[str, Any]) -> Prompt:
    segments = tuple(
        Segment(str(name), str(text), tuple(map(str, specials)), bool(cp), bool(lines))
        for name, text, specials, cp, lines in data["segments"]
    )
    return Prompt(data["format"], segments, tuple(map(str, data.get("stop", ()))))


def figures_from_wire(data: dict[str, Any] | None) -> Figures:
    known = {f.name for f in dataclasses.fields(Figures)}
    return Figures(**{k: v for k, v in (data or {}).items() if k in known})


def generation_to_wire(generation: Generation) -> dict[str, Any]:
    return {
        "text": generation.text,
        "tokens": generation.tokens,
        "stopReason": generation.stop_reason,
        "figures": dataclasses.asdict(generation.figures),
        "schedule": generation.schedule,
    }


def generation_from_wire(data: dict[str, Any]) -> Generation:
    return Generation(
        text=data["text"],
        tokens=list(data["tokens"]),
        stop_reason=data["stopReason"],
        figures=figures_from_wire(data.get("figures")),
        schedule=list(data.get("schedule", ())),
    )


def info_to_wire(info: ModelInfo) -> dict[str, Any]:
    return dataclasses.asdict(info)


def info_from_wire(data: dict[str, Any]) -> ModelInfo:
    return ModelInfo(**data)


def config_to_wire(config: EngineConfig) -> dict[str, Any]:
    return dataclasses.asdict(config)


def config_from_wire(data: dict[str, Any]) -> EngineConfig:
    known = {f.name for f in dataclasses.fields(EngineConfig)}
    return EngineConfig(**{k: v for k, v in data.items() if k in known})


# ---- stop rules --------------------------------------------------------------------------


def encode_rule(rule: Rule | None) -> tuple[dict[str, Any] | None, Rule | None]:
    """(what to send, what the server applies itself afterwards): a rule known here is
    sent as its parameters; any other is kept and applied to the finished text."""
    if rule is None:
        return None, None
    from lsp_server.actions import rewrite
    from lsp_server.completion.postprocess import StopRule

    owner = getattr(rule, "__self__", None)
    if isinstance(owner, StopRule) and getattr(rule, "__func__", None) is StopRule.check:
        spec = {
            "kind": "lines",
            "mode": owner.mode,
            "nextLine": owner.next_line,
            "maxLines": owner.max_lines,
        }
        return spec, None
    if rule is rewrite._closing_fence:  # the code actions' rule: no parameters
        return {"kind": "fence"}, None
    return None, rule


def decode_rule(spec: dict[str, Any] | None) -> Rule | None:
    if spec is None:
        return None
    kind = spec.get("kind")
    if kind == "lines":
        from lsp_server.completion.postprocess import StopRule

        return StopRule(spec["mode"], str(spec["nextLine"]), int(spec["maxLines"])).check
    if kind == "fence":
        from lsp_server.actions import rewrite

        return rewrite._closing_fence
    raise EngineError(f"unknown stop rule {kind!r}")
