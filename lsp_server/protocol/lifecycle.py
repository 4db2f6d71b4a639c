"""The JSON-RPC side of the server: what LSP says about the order of messages, and what
pygls gets wrong about it.

- Before ``initialize`` a request gets ServerNotInitialized (-32002) and a notification
  other than ``exit`` is dropped; a second ``initialize`` is refused (pygls accepted it
  and replaced the workspace: every open document was lost).
- After ``shutdown`` a request gets InvalidRequest; pygls dropped it unanswered, so the
  client waited forever.
- ``exit`` ends the process with 0 after ``shutdown``, 1 otherwise (the runner returns
  the code pygls raises: lsp_server.protocol.wire).
- A request whose params do not match the protocol gets InvalidParams instead of no
  answer; a request to a method of our own sent without ``params`` has them as null.
- pygls keeps a future per notification and per step of its generator handlers in the
  map of pending requests and never removes it: ≈2 KB per ``didChange`` for the life of
  the server (docs/upstream.md). They are removed when they finish.
"""

from __future__ import annotations

import asyncio
import functools
import logging
from concurrent.futures import Future
from typing import Any

from lsprotocol import types
from pygls.exceptions import (
    JsonRpcException,
    JsonRpcInvalidParams,
    JsonRpcInvalidRequest,
    JsonRpcServerNotInitialized,
)
from pygls.protocol import LanguageServerProtocol

from lsp_server.protocol.wire import ANSWERED, Oversized

log = logging.getLogger(__name__)


class QwenProtocol(LanguageServerProtocol):
    """pygls's protocol with LSP's lifecycle rules and answers for what it cannot read."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.initialize_received = False
        self._told_oversized = False

    # ---- reading ---------------------------------------------------------------------

    def structure_message(self, data: dict[str, Any]) -> Any:
        if (
            "jsonrpc" in data
            and "params" not in data
            and isinstance(data.get("method"), str)
            and self.get_message_type(data["method"]) is None
        ):
            # A method of our own (qwenLsp/stats) called without params: JSON-RPC allows
            # leaving them out, pygls's generic message type requires the key.
            data = {**data, "params": None}
        try:
            return super().structure_message(data)
        except JsonRpcException as exc:
            ident, method = data.get("id"), data.get("method")
            if ident is None:
                raise  # a notification: nobody waits for it (pygls logs it)
            if method is not None:
                refusal = self._refusal(str(method)) if method != types.INITIALIZE else None
                if refusal is not None:  # the order of messages first: LSP's answer
                    self._send_response(ident, None, refusal.to_response_error())
                    return ANSWERED
                log.warning("unreadable %s request (%s): answered with an error", method, exc)
                error = JsonRpcInvalidParams(f"invalid params for {method}")
                self._send_response(ident, None, error.to_response_error())
            else:
                future = self._request_futures.pop(ident, None)
                if future is not None and not future.done():
                    future.set_exception(JsonRpcInvalidParams("the client's answer is unreadable"))
            return ANSWERED

    # ---- the lifecycle ---------------------------------------------------------------

    def handle_message(self, message: Any) -> None:
        method = getattr(message, "method", None)
        ident = getattr(message, "id", None)
        if method is not None and ident is not None:  # a request
            error = self._refusal(method)
            if error is not None:
                log.info("%s request refused: %s", method, error.message)
                self._send_response(ident, None, error.to_response_error())
                return
        elif method is not None and method != types.EXIT and not self.initialize_received:
            log.debug("%s before initialize: dropped", method)
            return
        super().handle_message(message)

    def _refusal(self, method: str) -> JsonRpcException | None:
        """Why a request is not run now (None when it is)."""
        if method == types.INITIALIZE:
            if self.initialize_received:
                return JsonRpcInvalidRequest("the server is already initialized")
            self.initialize_received = True
            return None
        if not self.initialize_received:
            return JsonRpcServerNotInitialized("the server is not initialized yet")
        if self._shutdown:
            return JsonRpcInvalidRequest("the server is shutting down: only exit is accepted")
        return None

    # ---- pygls's pending futures -----------------------------------------------------

    def _execute_handler(
        self,
        msg_id: Any,
        handler: Any,
        callback: Any,
        args: tuple[Any, ...] | None = None,
        kwargs: dict[str, Any] | None = None,
    ) -> None:
        super()._execute_handler(msg_id, handler, callback, args, kwargs)
        future = self._request_futures.get(msg_id)
        answered = (
            isinstance(callback, functools.partial) and callback.func == self._send_handler_result
        )
        if future is not None and not answered:
            # A notification or a step of a generator handler: nobody cancels it by id.
            try:
                loop: asyncio.AbstractEventLoop | None = asyncio.get_running_loop()
            except RuntimeError:
                loop = None
            future.add_done_callback(functools.partial(self._forget, loop, msg_id))

    def _forget(
        self, loop: asyncio.AbstractEventLoop | None, msg_id: Any, future: Future[Any]
    ) -> None:
        # On the loop, later: a future cancelled by `shutdown` calls this while pygls
        # iterates over the map (and a thread handler's future, from its thread).
        if loop is None:
            self._drop(msg_id, future)
            return
        try:
            loop.call_soon_threadsafe(self._drop, msg_id, future)
        except RuntimeError:  # the loop is closed: the server is going away
            pass

    def _drop(self, msg_id: Any, future: Future[Any]) -> None:
        if self._request_futures.get(msg_id) is future:
            del self._request_futures[msg_id]

    # ---- messages over the size bound ------------------------------------------------

    def on_oversized(self, message: Oversized, text: str) -> None:
        """A message dropped for its size (lsp_server.protocol.wire). A dropped edit or
        open would leave the server's copy of the document wrong: it is closed, so it is
        not completed until the editor opens it again."""
        uri = message.uri()
        if uri and message.method() in (
            types.TEXT_DOCUMENT_DID_CHANGE,
            types.TEXT_DOCUMENT_DID_OPEN,
        ):
            try:
                self.workspace.remove_text_document(uri)
            except Exception:  # before initialize, or not open
                pass
        if not self._told_oversized:
            self._told_oversized = True
            notify = getattr(self._server, "_notify_user", None)
            if notify is not None:
                notify(f"{text}; raise protocol.maxMessageMb to accept it", "error")
