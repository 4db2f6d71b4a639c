"""pygls's logging, made fit for an editor's log: quiet unless asked, and without the
tracebacks of errors the server answers on purpose."""

from __future__ import annotations

import logging

from pygls.exceptions import JsonRpcInvalidParams, JsonRpcRequestCancelled


def quiet_pygls(*, debug: bool) -> None:
    """pygls logs the body of every message it sends at INFO: completions (the user's
    code) and stats polls would fill the editor's log. Only --log-level DEBUG shows them."""
    logging.getLogger("pygls").setLevel(logging.DEBUG if debug else logging.WARNING)
    logging.getLogger("pygls.protocol.json_rpc").addFilter(expected_request_errors)


def expected_request_errors(record: logging.LogRecord) -> bool:
    """pygls logs a traceback at ERROR for every request answered with an error, even
    the ones the server means (a position past the end of the document, a cancelled
    request): the client gets the error in its answer. Kept, without the traceback,
    only at --log-level DEBUG."""
    if str(record.msg).startswith("Unable to deserialize message"):
        # A message that does not match the protocol: the server answers it with an
        # error and logs one line (lsp_server.protocol.lifecycle.QwenProtocol); the traceback is
        # pygls's own, for DEBUG.
        return logging.getLogger("pygls").isEnabledFor(logging.DEBUG)
    error = record.exc_info[1] if record.exc_info else None
    if isinstance(error, BrokenPipeError):
        # The editor has gone (`:qa`) while an answer was on its way: not an error.
        record.exc_info = record.exc_text = None
        record.msg, record.args = "the client closed the connection", None
        record.levelno, record.levelname = logging.DEBUG, "DEBUG"
        return logging.getLogger("pygls").isEnabledFor(logging.DEBUG)
    if not isinstance(error, (JsonRpcInvalidParams, JsonRpcRequestCancelled)):
        return True
    record.exc_info = None
    record.exc_text = None
    record.msg = f"{record.msg}: {error}"
    record.levelno, record.levelname = logging.DEBUG, "DEBUG"
    return logging.getLogger("pygls").isEnabledFor(logging.DEBUG)
