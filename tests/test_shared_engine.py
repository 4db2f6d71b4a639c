"""One engine for every editor: several real servers over stdio on the tiny models, the
engine process they share, its faults, and who may talk to it."""

from __future__ import annotations

import json
import os
import pathlib
import socket
import stat
import subprocess
import sys
import time
from typing import Any

import pytest

from lsp_server.completion.service import Completer, CompletionRequest
from lsp_server.engine import wire
from lsp_server.engine.client import ClientInfo, EngineClient, engine_status, stop_engines
from lsp_server.engine.endpoint import Endpoint, connect, peer_allowed, peer_uid, runtime_dir
from lsp_server.engine.llama import LlamaEngine
from lsp_server.engine.types import EngineConfig
from lsp_server.settings import load_settings
from lsp_server.testing.lsp_client import StdioServer

ROOT = pathlib.Path(__file__).resolve().parents[1]
SOURCE = (
    "import math\n\n\n"
    "def area(radius):\n"
    "    return math.pi * radius ** 2\n\n\n"
    "def circumference(radius):\n"
    "    return "
)


class Server(StdioServer):
    """A `qwen-lsp` over stdio, driven by hand: several of them side by side."""

    def __init__(self, name: str, workspace: pathlib.Path, init: dict[str, Any], log: pathlib.Path):
        super().__init__(log_path=log, log_level="DEBUG")
        self.name = name
        self.initialize(workspace, init, process_id=os.getpid(), client_name=name)

    @property
    def messages(self) -> list[str]:
        """The `window/showMessage` texts so far."""
        return self.popups()

    def wait_ready(self, timeout: float = 60) -> dict[str, Any]:
        data = self.wait_model(timeout)
        assert data["model"] == "ready", data
        return data


def texts(answer: dict[str, Any]) -> list[str]:
    assert "result" in answer, answer
    return [item["insertText"] for item in answer["result"]["items"]]


def engine_of(data: dict[str, Any]) -> dict[str, Any]:
    return data["engineProcess"]  # type: ignore[no-any-return]


def options(model: pathlib.Path, **engine: Any) -> dict[str, Any]:
    return {
        "model": {"path": str(model), "threads": 1, "contextSize": 4096},
        "completion": {"maxTokens": 24},
        "context": {"enabled": False},
        "engine": {"warmup": False, "prefetch": False, **engine},
    }


def expected(model: pathlib.Path, path: pathlib.Path, text: str, init: dict[str, Any]) -> list[str]:
    """The suggestion of the model in this process, for the same request."""
    settings = load_settings(init).settings
    with LlamaEngine(EngineConfig(model_path=str(model), n_ctx=4096, n_threads=1)) as engine:
        lines = text.split("\n")
        request = CompletionRequest(
            path=str(path.resolve()),
            text=text,
            line=len(lines) - 1,
            character=len(lines[-1]),
            display_path=path.name,
            repo_name=path.parent.name,
        )
        suggestion = Completer(engine, settings).complete(request).suggestion
    return [suggestion.text] if suggestion else []


def pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    with open(f"/proc/{pid}/stat") as fh:  # a zombie has exited
        return fh.read().split(") ")[1][0] != "Z"


def wait_until(condition: Any, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, what
        time.sleep(0.05)


@pytest.fixture
def servers(tmp_path: pathlib.Path):
    """Start servers on a shared workspace; all are closed at the end."""
    started: list[Server] = []
    ws = tmp_path / "ws"
    ws.mkdir()

    def start(name: str, init: dict[str, Any]) -> Server:
        server = Server(name, ws, init, tmp_path / f"{name}.log")
        started.append(server)
        return server

    start.workspace = ws  # type: ignore[attr-defined]
    yield start
    for server in started:
        server.close()


def test_five_servers_load_the_model_once_and_answer_as_one(servers, qwen35_model):
    init = options(qwen35_model)
    ws = servers.workspace
    path = ws / "geometry.py"
    want = expected(qwen35_model, path, SOURCE, init)
    assert want, "the tiny model produced nothing to compare with"
    line, col = SOURCE.count("\n"), len(SOURCE.split("\n")[-1])

    first = [servers("editor-1", init), servers("editor-2", init)]
    for server in first:
        uri = server.open(path, SOURCE)
        server.wait_ready()
        assert texts(server.inline(uri, line, col).result(60)) == want
    more = [servers(f"editor-{i}", init) for i in range(3, 6)]
    for server in more:
        uri = server.open(path, SOURCE)
        server.wait_ready()
        assert texts(server.inline(uri, line, col).result(60)) == want

    engines = [engine_of(server.stats()) for server in first + more]
    assert len({e["pid"] for e in engines}) == 1, "one engine process"
    assert all(e["shared"] and e["modelLoads"] == 1 for e in engines), engines
    names = sorted(editor["name"] for editor in engines[-1]["editors"])
    assert names == [f"editor-{i} 1.0" for i in range(1, 6)]
    [running] = engine_status()
    assert running["modelLoads"] == 1 and len(running["editors"]) == 5
    log = pathlib.Path(Endpoint.for_key(running["key"]).log_path).read_text()
    assert log.count("model loaded in") == 1


def test_no_model_is_loaded_before_a_request_needs_it(servers, qwen35_model):
    """A commit message, a Markdown file, or a code file with completions off: no engine
    process, no model. The first completion in a code file loads it, once, and gets the
    suggestion (it waits for the load instead of answering empty)."""
    init = options(qwen35_model)
    ws = servers.workspace
    (ws / ".git").mkdir()
    off = options(qwen35_model)
    off["completion"]["enabled"] = False
    quiet = servers("completions-off", off)
    code = quiet.open(ws / "off.py", SOURCE)
    editor = servers("editor", init)
    notes = editor.open(ws / "notes.md", "# Notes\n\nThe area of a circle is ", "markdown")
    commit = editor.open(ws / ".git" / "COMMIT_EDITMSG", "Fix the area\n\n", "gitcommit")
    here = {"line": 2, "character": 10}
    for server, uri in ((quiet, code), (editor, notes), (editor, commit)):
        assert texts(server.inline(uri, here["line"], here["character"]).result(60)) == []
        answer = server.request(
            "textDocument/completion", {"textDocument": {"uri": uri}, "position": here}
        ).result(60)
        assert answer["result"]["items"] == [], answer
        actions = server.request(
            "textDocument/codeAction",
            {
                "textDocument": {"uri": uri},
                "range": {"start": here, "end": here},
                "context": {"diagnostics": []},
            },
        ).result(60)
        assert "result" in actions, actions
    time.sleep(1)  # past the debounce of the opens, when a warm-up would have run
    for server in (quiet, editor):
        data = server.stats()
        assert data["model"] == "idle" and "engineProcess" not in data, data
        assert data["modelMessage"] == "not loaded yet (loads at the first completion)"
    assert engine_status() == [], "an engine process was started"
    assert not list(pathlib.Path(runtime_dir()).glob("engine-*.sock"))

    path = ws / "geometry.py"
    want = expected(qwen35_model, path, SOURCE, init)
    uri = editor.open(path, SOURCE)
    line, col = SOURCE.count("\n"), len(SOURCE.split("\n")[-1])
    assert texts(editor.inline(uri, line, col).result(60)) == want  # waited for the load
    assert texts(editor.inline(uri, line, col).result(60)) == want
    data = editor.stats()
    assert data["model"] == "ready" and engine_of(data)["modelLoads"] == 1, data
    [running] = engine_status()
    assert running["modelLoads"] == 1
    assert [e["name"] for e in running["editors"]] == ["editor 1.0"]  # not the other one
    assert quiet.stats()["model"] == "idle"
    assert not editor.messages and not quiet.messages


def test_the_complete_command_reuses_the_editors_engine_and_lingers_briefly_after_its_own(
    servers, qwen35_model, tmp_path
):
    """`qwen-lsp complete` attaches like an editor, but as a one-shot command: an engine
    it starts itself stays `ONESHOT_IDLE_S` (not the editors' 300 s) after it, and it
    leaves the idle time of the editors' engine as they set it."""
    from lsp_server.engine.client import ONESHOT_IDLE_S

    source = tmp_path / "geometry.py"
    source.write_text(SOURCE)
    location = f"{source}:{SOURCE.count(chr(10)) + 1}:{len(SOURCE.split(chr(10))[-1]) + 1}"
    settings = json.dumps({"model": {"threads": 1, "contextSize": 4096}})

    def complete() -> dict[str, Any]:
        done = subprocess.run(
            [sys.executable, "-m", "lsp_server", "complete", location, "--json"]
            + ["--model", str(qwen35_model), "--settings", settings],
            capture_output=True,
            text=True,
            env={**os.environ, "PYTHONPATH": str(ROOT)},
            timeout=120,
        )
        assert done.returncode == 0, done.stderr
        return json.loads(done.stdout)  # type: ignore[no-any-return]

    complete()
    [own] = engine_status()  # started by the command, left behind briefly
    assert own["idleExitSeconds"] == ONESHOT_IDLE_S and own["editors"] == []
    stop_engines()

    init = options(qwen35_model, idleExitSeconds=120)
    init["model"]["contextSize"] = 4096
    editor = servers("editor", init)
    editor.open(servers.workspace / "a.py", SOURCE)
    pid = engine_of(editor.wait_ready())["pid"]
    complete()
    [shared] = engine_status()
    assert shared["pid"] == pid and shared["modelLoads"] == 1  # the model the editor loaded
    assert shared["idleExitSeconds"] == 120  # the editors' setting, kept
    assert [e["name"] for e in shared["editors"]] == ["editor 1.0"]


def test_a_request_while_another_editor_generates_waits_its_turn(servers, qwen35_model):
    """Editor A asks for a long suggestion; editor B's request, sent while it runs, is
    served after it: neither is lost, neither is cancelled."""
    long = options(qwen35_model)
    long["completion"].update({"maxTokens": 1500, "multiline": "always", "timeBudgetMs": 60000})
    short = options(qwen35_model)
    ws = servers.workspace
    a, b = servers("editor-a", long), servers("editor-b", short)
    path_a, path_b = ws / "a.py", ws / "b.py"
    text_a = "def main():\n    "
    uri_a, uri_b = a.open(path_a, text_a), b.open(path_b, SOURCE)
    a.wait_ready()
    b.wait_ready()
    want_b = expected(qwen35_model, path_b, SOURCE, short)
    sent_a = time.monotonic()
    job_a = a.inline(uri_a, 1, 4)
    wait_until(lambda: engine_of(b.stats())["busy"], 30, "A's generation did not start")
    job_b = b.inline(uri_b, SOURCE.count("\n"), len(SOURCE.split("\n")[-1]))
    answer_b = job_b.result(120)
    done_b = time.monotonic()
    assert texts(answer_b) == want_b
    assert texts(job_a.result(120)), "A's suggestion was lost"
    stats_a = a.stats()
    assert stats_a["errors"] == 0 and stats_a["cancelled"] == 0
    [figures_a] = stats_a["recent"]
    # B's answer came after A's whole job in the engine (it started after `sent_a`).
    engine_ms_a = figures_a["prefillMs"] + figures_a["generateMs"]
    assert figures_a["generatedTokens"] > 20, figures_a
    assert done_b >= sent_a + engine_ms_a / 1000


def test_closing_one_editor_leaves_the_others_and_the_last_starts_the_idle_timer(
    servers, qwen35_model
):
    init = options(qwen35_model, idleExitSeconds=1)
    path = servers.workspace / "geometry.py"
    a, b = servers("editor-a", init), servers("editor-b", init)
    uri_a, uri_b = a.open(path, SOURCE), b.open(path, SOURCE)
    a.wait_ready()
    b.wait_ready()
    pid = engine_of(b.stats())["pid"]
    a.close()
    time.sleep(2)  # longer than the idle time: B still holds the engine
    assert pid_alive(pid)
    line, col = SOURCE.count("\n"), len(SOURCE.split("\n")[-1])
    assert texts(b.inline(uri_b, line, col).result(60)) == expected(
        qwen35_model, path, SOURCE, init
    )
    after = engine_of(b.stats())
    assert after["pid"] == pid and [e["name"] for e in after["editors"]] == ["editor-b 1.0"]
    assert not b.messages
    b.close()
    wait_until(lambda: not pid_alive(pid), 15, "the engine did not exit after its idle time")
    assert engine_status() == []
    del uri_a


def test_killing_the_engine_answers_the_request_and_the_next_one_restarts_it(servers, qwen35_model):
    init = options(qwen35_model)
    init["completion"].update({"maxTokens": 1500, "multiline": "always", "timeBudgetMs": 60000})
    server = servers("editor", init)
    path = servers.workspace / "main.py"
    uri = server.open(path, "def main():\n    ")
    pid = engine_of(server.wait_ready())["pid"]
    job = server.inline(uri, 1, 4)
    wait_until(lambda: engine_of(server.stats())["busy"], 30, "the generation did not start")
    os.kill(pid, 9)
    answer = job.result(30)  # answered, not hung
    assert texts(answer) == []
    wait_until(lambda: server.messages, 10, "no message about the engine")
    assert "engine process stopped" in server.messages[0] and "SIGKILL" in server.messages[0]
    assert server.inline(uri, 1, 4).result(60).get("result") is not None
    engine = engine_of(server.stats())
    assert engine["pid"] != pid and engine["modelLoads"] == 1 and engine["restarts"] == 1
    assert len(server.messages) == 1


def test_model_truncated_during_a_completion_does_not_take_the_server_down(tmp_path, servers):
    """#17: SIGBUS when the model file is truncated while a completion evaluates. The
    engine process dies; the server answers, says it once, and loads the model again
    once the file is whole."""
    from lsp_server.testing.tiny_gguf import build_qwen35

    model = build_qwen35(tmp_path / "m.gguf", n_embd=512, n_layer=8)
    whole = model.read_bytes()
    init = {
        "model": {"path": str(model), "nGpuLayers": 0},
        "engine": {"warmup": False, "prefetch": False},
        "completion": {"timeBudgetMs": 20000},
    }
    server = servers("editor", init)
    text = "".join(f"def function_{i}(a, b):\n    return a * {i} + b\n\n" for i in range(300))
    path = servers.workspace / "big.py"
    uri = server.open(path, text)
    pid = engine_of(server.wait_ready())["pid"]
    job = server.inline(uri, 600, 0)
    time.sleep(0.3)
    os.truncate(model, len(whole) // 2)
    answer = job.result(60)
    assert texts(answer) == []
    assert server.proc.poll() is None, "the server died with the engine"
    assert not pid_alive(pid)
    wait_until(lambda: server.messages, 10, "no message about the engine")
    assert any("SIGBUS" in m or "model file changed" in m for m in server.messages), server.messages
    # The next request: the truncated file cannot be loaded, said plainly.
    assert texts(server.inline(uri, 600, 0).result(60)) == []
    wait_until(
        lambda: server.stats()["model"] in ("failed", "disabled"), 30, "the failure is not shown"
    )
    assert "truncated" in server.stats()["modelMessage"]
    model.write_bytes(whole)  # the file is whole again: the next request loads it
    server.inline(uri, 600, 0).result(60)
    wait_until(lambda: server.stats()["model"] == "ready", 60, "the model was not loaded again")
    assert "result" in server.inline(uri, 600, 0).result(60)
    assert server.proc.poll() is None


def test_private_engines_load_one_model_per_server(servers, qwen35_model):
    init = options(qwen35_model, shared=False)
    path = servers.workspace / "geometry.py"
    a, b = servers("editor-a", init), servers("editor-b", init)
    a.open(path, SOURCE)
    b.open(path, SOURCE)
    ea, eb = engine_of(a.wait_ready()), engine_of(b.wait_ready())
    assert ea["pid"] != eb["pid"] and not ea["shared"] and not eb["shared"]
    a.close()
    wait_until(lambda: not pid_alive(ea["pid"]), 15, "a private engine outlived its server")
    assert pid_alive(eb["pid"])


# ---- the socket and who may use it ----------------------------------------------------


def test_the_socket_and_its_folder_are_the_users_only(qwen35_model):
    client = EngineClient.attach(
        EngineConfig(model_path=str(qwen35_model), n_ctx=1024, n_threads=1),
        client=ClientInfo("test"),
    )
    try:
        folder = os.stat(runtime_dir())
        sock = os.stat(client.endpoint.socket_path)
        assert stat.S_IMODE(folder.st_mode) == 0o700 and folder.st_uid == os.getuid()
        assert stat.S_ISSOCK(sock.st_mode) and stat.S_IMODE(sock.st_mode) == 0o600
        for name in ("log_path", "lock_path", "pid_path"):
            assert stat.S_IMODE(os.stat(getattr(client.endpoint, name)).st_mode) == 0o600
        assert client.count_tokens("def f():") > 0
    finally:
        client.close()


def test_only_the_same_user_is_allowed():
    assert peer_allowed(1000, own_uid=1000)
    assert not peer_allowed(1001, own_uid=1000)
    assert not peer_allowed(0, own_uid=1000)
    assert not peer_allowed(None, own_uid=1000)  # a peer whose user is unknown
    left, right = socket.socketpair(socket.AF_UNIX)
    with left, right:
        assert peer_uid(left) == os.getuid()


@pytest.mark.skipif(not hasattr(os, "setuid") or os.getuid() != 0, reason="needs root")
def test_a_connection_from_another_user_is_refused(qwen35_model):
    """Even with the folder and socket opened to all (a mistake of the user's), a process
    of another uid gets no answer: the engine checks its peer's credentials."""
    client = EngineClient.attach(
        EngineConfig(model_path=str(qwen35_model), n_ctx=1024, n_threads=1),
        client=ClientInfo("test"),
    )
    try:
        path = client.endpoint.socket_path
        os.chmod(os.path.dirname(path), 0o777)
        os.chmod(path, 0o666)
        answer = as_other_user(65534, path)
        assert answer == b"", answer  # closed without a word
        log = pathlib.Path(client.endpoint.log_path).read_text()
        assert "refused a connection from uid 65534" in log
        # The owner still gets answers.
        with connect(client.endpoint) as sock:
            wire.send(sock, {"op": "status", "id": 1})
            assert wire.recv(sock)["result"]["pid"] > 0  # type: ignore[index]
    finally:
        client.close()
        stop_engines()


def as_other_user(uid: int, path: str) -> bytes:
    """What a process of user `uid` reads after asking the engine at `path` for its
    status (a fork: the interpreter's files need not be readable by that user)."""
    read_end, write_end = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: never returns into pytest
        code = 1
        try:
            os.setuid(uid)
            with socket.socket(socket.AF_UNIX) as sock:
                sock.settimeout(10)
                sock.connect(path)
                try:
                    wire.send(sock, {"op": "status", "id": 1})
                    answer = sock.recv(100)
                except (ConnectionResetError, BrokenPipeError):  # closed on us
                    answer = b""
                os.write(write_end, b"<" + answer + b">")
            code = 0
        except BaseException as exc:
            os.write(write_end, repr(exc).encode())
        finally:
            os._exit(code)
    os.close(write_end)
    _, status = os.waitpid(pid, 0)
    with os.fdopen(read_end, "rb") as fh:
        data = fh.read()
    assert status == 0 and data.startswith(b"<") and data.endswith(b">"), (status, data)
    return data[1:-1]


def test_a_stop_rule_crosses_the_socket_as_its_parameters():
    from lsp_server.actions import rewrite
    from lsp_server.completion.postprocess import StopRule

    rule = StopRule("multi", "    return x", max_lines=3)
    spec, local = wire.encode_rule(rule.check)
    assert local is None
    rebuilt = wire.decode_rule(spec)
    assert rebuilt is not None
    for text in ("a\nb\n", "a\n    return x\nz", "1\n2\n3\n4\n", "one line"):
        assert rebuilt(text) == rule.check(text)
    assert wire.decode_rule(wire.encode_rule(rewrite._closing_fence)[0]) is rewrite._closing_fence

    def custom(text: str) -> int | None:
        return None

    assert wire.encode_rule(custom) == (None, custom)  # applied by the server instead


def test_doctor_and_engine_command_show_the_engine_and_its_editors(qwen35_model):
    from lsp_server.commands.doctor import check_engine

    idle = check_engine(True)
    assert idle.status == "ok" and "none running" in idle.detail
    assert "not loaded yet (it loads at the first completion" in idle.detail
    client = EngineClient.attach(
        EngineConfig(model_path=str(qwen35_model), n_ctx=1024, n_threads=1),
        client=ClientInfo("Neovim 0.12", workspace="ws", pid=4242),
    )
    try:
        pid = client.describe()["engineProcess"]["pid"]
        check = check_engine(True)
        assert check.status == "ok" and f"shared engine, pid {pid}" in check.detail
        assert "attached: Neovim 0.12 (pid 4242) in ws" in check.detail
        run = [sys.executable, "-m", "lsp_server", "engine"]
        env = {**os.environ, "PYTHONPATH": str(ROOT)}
        status = subprocess.run([*run, "--json"], capture_output=True, text=True, env=env)
        [engine] = json.loads(status.stdout)["engines"]
        assert engine["pid"] == pid and engine["editors"][0]["name"] == "Neovim 0.12"
        stopped = subprocess.run([*run, "stop"], capture_output=True, text=True, env=env)
        assert f"pid {pid}" in stopped.stdout
        wait_until(lambda: not pid_alive(pid), 15, "the engine did not stop")
    finally:
        client.close()
