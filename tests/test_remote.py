"""The remote backend (`model.backend: "openai"`) against a real OpenAI-compatible serving
engine on loopback: llama-cpp-python's server over the hybrid tiny model."""

from __future__ import annotations

import http.server
import json
import threading
import time
import urllib.request

import pytest

from lsp_server.completion.postprocess import choose_mode, finish
from lsp_server.completion.service import Completer, CompletionRequest
from lsp_server.engine.llama import Cancelled, CancelToken, EngineError, ModelLoadError
from lsp_server.engine.remote import RemoteConfig, RemoteEngine
from lsp_server.settings import Settings

PROMPT = "import math\n\n\ndef area(radius):\n    return "


def direct(url: str, prompt: str, max_tokens: int) -> str:
    """What the serving engine answers, asked without streaming (the reference)."""
    body = json.dumps(
        {"prompt": prompt, "max_tokens": max_tokens, "temperature": 0, "stream": False}
    ).encode()
    request = urllib.request.Request(
        f"{url}/completions", body, {"Content-Type": "application/json"}
    )
    with urllib.request.urlopen(request, timeout=60) as answer:
        return str(json.load(answer)["choices"][0]["text"])


def test_streamed_generation_is_the_servers_answer_with_our_stops(serving_engine: str) -> None:
    engine = RemoteEngine(RemoteConfig(url=serving_engine, n_ctx=4096))
    assert engine.info.architecture == "remote"
    assert engine.n_ctx == 4096 - 409  # a tenth kept free: prompts are measured by estimate
    whole = engine.generate_text(PROMPT, max_tokens=24)
    assert whole.text == direct(serving_engine, PROMPT, 24)
    assert whole.text, "the tiny model produced nothing to compare with"
    assert whole.figures.generated_tokens > 0 and whole.figures.prompt_tokens > 0
    # A stop string and a rule cut the text exactly as the local engine does.
    cut = whole.text[len(whole.text) // 2 :][:2]
    stopped = engine.generate_text(PROMPT, max_tokens=24, stop=(cut,))
    # (the server applies the stop strings too, and then says only that it stopped)
    assert stopped.stop_reason in ("stop", "eos")
    assert stopped.text == whole.text[: whole.text.find(cut)]
    ruled = engine.generate_text(PROMPT, max_tokens=24, rule=lambda t: 1 if len(t) > 1 else None)
    assert ruled.stop_reason == "rule" and ruled.text == whole.text[:1]


def test_a_cancelled_request_stops_at_once_and_the_engine_goes_on(serving_engine: str) -> None:
    engine = RemoteEngine(RemoteConfig(url=serving_engine, n_ctx=4096))
    token = CancelToken()
    threading.Timer(0.3, token.cancel).start()
    started = time.monotonic()
    with pytest.raises(Cancelled):
        engine.generate_text("x = 1\n" * 600, max_tokens=3000, cancel=token)
    assert time.monotonic() - started < 1.5
    # The deadline keeps what came, like the local engine's time budget.
    timed = engine.generate_text(
        "x = 1\n" * 600, max_tokens=3000, cancel=CancelToken(deadline=time.monotonic() + 0.3)
    )
    assert timed.stop_reason in ("time", "eos", "length")
    assert engine.generate_text(PROMPT, max_tokens=24).text == direct(serving_engine, PROMPT, 24)


def test_the_completer_uses_a_serving_engine_like_the_local_one(serving_engine: str) -> None:
    """Same prompt building and post-processing; the prompt goes out as text."""
    settings = Settings()
    settings.context.enabled = False
    settings.completion.max_tokens = 24
    completer = Completer(RemoteEngine(RemoteConfig(url=serving_engine, n_ctx=4096)), settings)
    lines = PROMPT.split("\n")
    request = CompletionRequest("/ws/geometry.py", PROMPT, len(lines) - 1, len(lines[-1]))
    result = completer.complete(request)
    window = completer.window(request)
    prompt = "".join(s.text for s in completer.build(request, window).segments)

    expected = finish(direct(serving_engine, prompt, 24), window, choose_mode(window, "auto"))
    assert (result.suggestion.text if result.suggestion else None) == (
        expected.text if expected else None
    )
    assert result.format == "chat" and result.prompt_tokens is None
    assert completer.warm(request).prompt_tokens == 0  # the server caches its own way


class _NotAnApi(http.server.BaseHTTPRequestHandler):
    def do_GET(self) -> None:  # noqa: N802 (http.server's name)
        if self.path.endswith("/models") and "Bearer good" not in self.headers.get(
            "Authorization", ""
        ):
            self.send_response(401)
            self.end_headers()
            return
        self.send_response(200)
        self.send_header("Content-Type", "text/html")
        self.end_headers()
        self.wfile.write(b"<html>a web page</html>")

    def log_message(self, *args: object) -> None:
        pass


def test_connection_problems_are_one_clear_error(serving_engine: str) -> None:
    with pytest.raises(ModelLoadError, match="connection refused"):
        RemoteEngine(RemoteConfig(url="http://127.0.0.1:1/v1"))
    with pytest.raises(ModelLoadError, match="http:// or https://"):
        RemoteEngine(RemoteConfig(url="localhost:8080"))
    with pytest.raises(ModelLoadError, match="has no model 'nope'.*it serves"):
        RemoteEngine(RemoteConfig(url=serving_engine, model="nope"))
    web = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _NotAnApi)
    threading.Thread(target=web.serve_forever, daemon=True).start()
    try:
        url = f"http://127.0.0.1:{web.server_address[1]}/v1"
        with pytest.raises(ModelLoadError, match="refused the API key"):
            RemoteEngine(RemoteConfig(url=url, api_key="bad"))
        with pytest.raises(ModelLoadError, match="OpenAI-compatible"):
            RemoteEngine(RemoteConfig(url=url, api_key="good"))
    finally:
        web.shutdown()
    assert issubclass(ModelLoadError, EngineError)


def test_code_actions_are_written_by_a_serving_engine(serving_engine: str) -> None:
    from lsp_server.actions.plan import Diagnostic, plan_actions
    from lsp_server.actions.rewrite import Rewriter, RewriteRequest
    from lsp_server.actions.rewrite import finish as finish_rewrite

    settings = Settings()
    settings.context.enabled = False
    settings.code_actions.max_tokens = 24
    engine = RemoteEngine(RemoteConfig(url=serving_engine, n_ctx=4096))
    completer = Completer(engine, settings)
    rewriter = Rewriter(
        engine, settings, lambda prompt: completer.tokenize(prompt).tokens, completer.count_tokens
    )
    text = "some notes\nwith a typo: teh\nend\n"
    plan = plan_actions(text, None, 1, 1, [Diagnostic("typo: teh", 1, 1)], [])[0]
    request = RewriteRequest(plan, "/w/notes.txt", "notes.txt", text)
    prompt = rewriter.build(request).text
    answer = engine.generate_text(prompt, max_tokens=24, stop=("```",))
    expected = finish_rewrite(request, answer.text, answer.stop_reason)
    result = rewriter.run(request)
    assert (result.new_text, result.message) == (expected.new_text, expected.message)
    assert result.figures.generated_tokens > 0


def test_connections_are_kept_alive_between_requests(serving_engine: str) -> None:
    """A new connection per keystroke costs round trips (a TLS handshake over the
    network): one whose answer was read to the end serves the next request; one closed to
    cancel a request (the server's signal to stop) is not reused."""
    engine = RemoteEngine(RemoteConfig(url=serving_engine, n_ctx=4096))
    answers = [engine.generate_text(PROMPT, max_tokens=8).text for _ in range(5)]
    assert len(set(answers)) == 1 and engine.connections_opened == 1
    token = CancelToken()
    threading.Timer(0.2, token.cancel).start()
    with pytest.raises(Cancelled):
        engine.generate_text("x = 1\n" * 600, max_tokens=3000, cancel=token)
    assert engine.connections_opened == 1  # the kept one was used, and then closed
    assert engine.generate_text(PROMPT, max_tokens=8).text == answers[0]
    assert engine.connections_opened == 2
    engine.close()
