"""The VS Code extension in a real VS Code: code-server 4.100.3 (VS Code 1.100.3 for the
web) in headless Chromium, driven by playwright-core like a person would use it
(editors/vscode/test/browser/drive.mjs), against the real server on a tiny model.

`editors/vscode/test/browser/install.sh` installs code-server and playwright-core into
$QWEN_LSP_VSCODE_DIR (default ~/.cache/qwen-lsp/vscode-test) and Debian's chromium;
`.ci/run` runs it. Elsewhere the test skips and says so. Each run gets a fresh copy of the
workspace (the web build autosaves) and of VS Code's user data. A failing run leaves its
screenshots (one per step) in the folder the failure prints.
"""

from __future__ import annotations

import json
import os
import pathlib
import re
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator

import pytest

ROOT = pathlib.Path(__file__).resolve().parents[2]
EXTENSION = ROOT / "editors" / "vscode"
DRIVER = EXTENSION / "test" / "browser" / "drive.mjs"
INSTALL = EXTENSION / "test" / "browser" / "install.sh"
INSTALLED = pathlib.Path(
    os.environ.get("QWEN_LSP_VSCODE_DIR", "~/.cache/qwen-lsp/vscode-test")
).expanduser()
CODE_SERVER = INSTALLED / "node_modules" / ".bin" / "code-server"
PLAYWRIGHT = INSTALLED / "node_modules" / "playwright-core"
CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
NODE = shutil.which("node")
ESBUILD = EXTENSION / "node_modules" / "esbuild"


def _missing() -> str | None:
    if NODE is None:
        return "node"
    if not ESBUILD.exists():
        return "editors/vscode/node_modules (npm ci --prefix editors/vscode)"
    if not CODE_SERVER.exists() or not PLAYWRIGHT.exists():
        return f"code-server and playwright-core in {INSTALLED}"
    if CHROMIUM is None:
        return "chromium"
    return None


pytestmark = pytest.mark.skipif(
    _missing() is not None,
    reason=f"a real VS Code needs {_missing()}: run {INSTALL.relative_to(ROOT)} (.ci/run does)",
)

# A module of this repository, as the project file a person opens. The driver types at the
# end of `TYPED_LINE` (an empty line inside a function) and runs a code action on the
# line of a `def`.
PROJECT_FILE = ROOT / "lsp_server" / "completion" / "postprocess.py"


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _extension(tmp: pathlib.Path) -> pathlib.Path:
    """The extension as VS Code installs it: the manifest, the README and the bundle."""
    folder = tmp / "extensions" / "qwen-lsp.qwen-lsp-0.1.0"
    (folder / "dist").mkdir(parents=True)
    for name in ("package.json", "README.md"):
        shutil.copy(EXTENSION / name, folder / name)
    # As `npm run bundle`, through esbuild's API (its bin may be a native binary or a script).
    build = {
        "entryPoints": [str(EXTENSION / "src" / "extension.ts")],
        "bundle": True,
        "platform": "node",
        "format": "cjs",
        "target": "node20",
        "external": ["vscode"],
        "outfile": str(folder / "dist" / "extension.js"),
    }
    bundle = subprocess.run(
        [str(NODE), "-e", f"require('esbuild').buildSync({json.dumps(build)})"],
        cwd=EXTENSION,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert bundle.returncode == 0, bundle.stderr
    return folder.parent


def _workspace(tmp: pathlib.Path) -> tuple[pathlib.Path, str, int]:
    """A fresh small project: the file to open and the line to type on."""
    workspace = tmp / "project"
    (workspace / ".git").mkdir(parents=True)
    (workspace / "pkg").mkdir()
    target = workspace / "pkg" / "shapes.py"
    target.write_text(
        '"""Shapes and their areas."""\n'
        "import math\n"
        "\n"
        "\n"
        "def circle_area(radius):\n"
        "    return math.pi * radius * radius\n"
        "\n"
        "\n"
        "def square_area(side):\n"
        "    \n"
        "\n"
        "\n"
        "def describe(shape, size):\n"
        "    return f'{shape} of size {size}'\n"
    )
    shutil.copy(PROJECT_FILE, workspace / "pkg" / PROJECT_FILE.name)
    return workspace, "pkg/shapes.py", 10


@pytest.fixture
def vscode(
    tmp_path: pathlib.Path, qwen2_model: pathlib.Path
) -> Iterator[tuple[str, pathlib.Path, dict[str, object]]]:
    workspace, file, line = _workspace(tmp_path)
    extensions = _extension(tmp_path)
    data = tmp_path / "user-data"
    # qwenLsp.server.command is `machine-overridable`: in a remote window (code-server is
    # one) VS Code reads it from the Machine settings only.
    (data / "Machine").mkdir(parents=True)
    (data / "Machine" / "settings.json").write_text(
        json.dumps({"qwenLsp.server.command": [sys.executable, "-m", "lsp_server"]})
    )
    (data / "User").mkdir()
    (data / "User" / "settings.json").write_text(
        json.dumps(
            {
                "qwenLsp.model.path": str(qwen2_model),
                "qwenLsp.model.threads": 1,
                "qwenLsp.model.contextSize": 4096,
                "qwenLsp.completion.maxTokens": 12,
                "qwenLsp.completion.multiline": "always",
                "qwenLsp.engine.warmup": False,
                "qwenLsp.engine.prefetch": False,
                "qwenLsp.codeActions.maxTokens": 48,
                "workbench.startupEditor": "none",
                "workbench.tips.enabled": False,
                "workbench.welcomePage.walkthroughs.openOnInstall": False,
                "editor.inlineSuggest.enabled": True,
                "files.autoSave": "off",
                "telemetry.telemetryLevel": "off",
                "chat.disableAIFeatures": True,
                "security.workspace.trust.enabled": False,
            }
        )
    )
    port = _free_port()
    env = {**os.environ, "PYTHONPATH": str(ROOT), "VSCODE_PROXY_URI": ""}
    log = (tmp_path / "code-server.log").open("wb")
    proc = subprocess.Popen(
        [
            str(CODE_SERVER),
            "--bind-addr",
            f"127.0.0.1:{port}",
            "--auth",
            "none",
            "--disable-telemetry",
            "--disable-update-check",
            "--disable-workspace-trust",
            "--disable-getting-started-override",
            "--extensions-dir",
            str(extensions),
            "--user-data-dir",
            str(data),
            str(workspace),
        ],
        stdout=log,
        stderr=subprocess.STDOUT,
        env=env,
        start_new_session=True,
    )
    url = f"http://127.0.0.1:{port}/?folder={workspace}"
    deadline = time.monotonic() + 60
    while True:
        try:
            urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=2).read()
            break
        except OSError:
            if proc.poll() is not None or time.monotonic() > deadline:
                raise AssertionError(
                    "code-server did not start:\n" + (tmp_path / "code-server.log").read_text()
                ) from None
            time.sleep(0.2)
    config = {
        "url": url,
        "file": file,
        "line": line,
        "actionLineText": "def describe(shape, size):",
        "typed": "return ",
        "action": "Add a docstring",
    }
    try:
        yield url, workspace, config
    finally:
        os.killpg(proc.pid, 15)
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, 9)
            proc.wait()
        log.close()


def test_a_session_in_real_vscode(
    vscode: tuple[str, pathlib.Path, dict[str, object]], tmp_path: pathlib.Path
) -> None:
    url, workspace, config = vscode
    artifacts = tmp_path / "screenshots"
    artifacts.mkdir()
    config.update(
        {"chromium": CHROMIUM, "playwright": str(PLAYWRIGHT), "artifacts": str(artifacts)}
    )
    (tmp_path / "drive.json").write_text(json.dumps(config))
    run = subprocess.run(
        [str(NODE), str(DRIVER), str(tmp_path / "drive.json")],
        capture_output=True,
        text=True,
        timeout=240,
    )
    # The extension's output channel ("qwen-lsp"): the server's log, as VS Code shows it.
    output = sorted((tmp_path / "user-data" / "logs").glob("**/*qwen-lsp.log"))
    channel = output[-1].read_text(errors="replace") if output else ""
    logs = (
        f"--- qwen-lsp output ---\n{channel[-4000:]}\n--- code-server ---\n"
        + ((tmp_path / "code-server.log").read_text(errors="replace")[-2000:])
    )
    assert run.returncode == 0, (
        f"{run.stdout[-3000:]}\n{run.stderr[-3000:]}\n{logs}\nscreenshots: {artifacts}"
    )
    seen = json.loads(run.stdout)
    failed = f"{json.dumps(seen, indent=1)[-4000:]}\n{logs}\nscreenshots: {artifacts}"
    # Typing showed ghost text, and Tab put it in the file.
    assert seen["ghost"].strip(), failed
    parts = [p.strip() for p in seen["ghost"].split("\n") if p.strip()]
    assert all(p in seen["accepted"] for p in parts), failed
    # The status item: ready, and its hover keeps the Stats link and the pin on screen.
    assert "qwen-lsp: ready" in seen["readyStatus"], failed
    assert seen["statsLinkVisible"] and seen["pinVisible"], failed
    assert '"requests"' in seen["stats"], failed
    assert "qwen-lsp: paused" in seen["toggled"], failed
    assert "qwen-lsp: ready" in seen["restart"], failed
    # The code action: offered, run with a cancellable progress, then applied or refused
    # with a message (a tiny random model rarely writes a whole function).
    action = seen["codeAction"]
    assert any(config["action"] in t for t in action["titles"]), failed
    assert seen["progressShown"] and seen["progressCancellable"], failed
    # VS Code's own settings.json gets no suggestion.
    assert not seen["settingsFile"].strip(), failed
    # The server's log lines at their own level: INFO is info, not error.
    assert "[info] lsp_server.protocol.server: qwen-lsp" in channel, failed
    assert not re.search(r"\[error\] (lsp_server|context|pygls)\.", channel), failed
