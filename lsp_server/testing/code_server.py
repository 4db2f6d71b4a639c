"""A real VS Code for tests and benchmarks: code-server (VS Code for the web) with the
extension of editors/vscode installed, driven in headless Chromium by playwright-core.

`editors/vscode/test/browser/install.sh` installs code-server and playwright-core into
$QWEN_LSP_VSCODE_DIR (default ~/.cache/qwen-lsp/vscode-test) and Debian's chromium.
`missing()` says what is not there.
"""

from __future__ import annotations

import contextlib
import json
import os
import pathlib
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from typing import Any

ROOT = pathlib.Path(__file__).resolve().parents[2]
EXTENSION = ROOT / "editors" / "vscode"
BROWSER = EXTENSION / "test" / "browser"
INSTALL = BROWSER / "install.sh"
INSTALLED = pathlib.Path(
    os.environ.get("QWEN_LSP_VSCODE_DIR", "~/.cache/qwen-lsp/vscode-test")
).expanduser()
CODE_SERVER = INSTALLED / "node_modules" / ".bin" / "code-server"
PLAYWRIGHT = INSTALLED / "node_modules" / "playwright-core"
CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
NODE = shutil.which("node")
ESBUILD = EXTENSION / "node_modules" / "esbuild"

# What a session leaves out of VS Code's way: no welcome page, no tips, no AI chat, no
# trust prompt, no autosave.
QUIET_SETTINGS: dict[str, Any] = {
    "workbench.startupEditor": "none",
    "workbench.tips.enabled": False,
    "workbench.welcomePage.walkthroughs.openOnInstall": False,
    "editor.inlineSuggest.enabled": True,
    "files.autoSave": "off",
    "telemetry.telemetryLevel": "off",
    "chat.disableAIFeatures": True,
    "security.workspace.trust.enabled": False,
}


def missing() -> str | None:
    """What a real VS Code session lacks here, or None."""
    if NODE is None:
        return "node"
    if not ESBUILD.exists():
        return "editors/vscode/node_modules (npm ci --prefix editors/vscode)"
    if not CODE_SERVER.exists() or not PLAYWRIGHT.exists():
        return f"code-server and playwright-core in {INSTALLED}"
    if CHROMIUM is None:
        return "chromium"
    return None


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def bundle_extension(tmp: pathlib.Path) -> pathlib.Path:
    """The extension as VS Code installs it (the manifest, the README and the bundle) in
    an extensions folder under `tmp`; returns that folder."""
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
    if bundle.returncode != 0:
        raise RuntimeError(f"esbuild failed: {bundle.stderr}")
    return folder.parent


@contextlib.contextmanager
def code_server(
    tmp: pathlib.Path,
    workspace: pathlib.Path,
    settings: dict[str, Any],
    server_command: list[str] | None = None,
) -> Iterator[str]:
    """code-server on a free port with the extension and `settings` (the user's
    settings.json, over QUIET_SETTINGS), `workspace` open; yields the page's URL.
    VS Code's user data (its logs included: the extension's output channel is
    `user-data/logs/**/*qwen-lsp.log`) is `tmp/user-data`, its own log `tmp/code-server.log`."""
    extensions = bundle_extension(tmp)
    data = tmp / "user-data"
    # qwenLsp.server.command is `machine-overridable`: in a remote window (code-server is
    # one) VS Code reads it from the Machine settings only.
    (data / "Machine").mkdir(parents=True)
    command = server_command or [sys.executable, "-m", "lsp_server"]
    (data / "Machine" / "settings.json").write_text(json.dumps({"qwenLsp.server.command": command}))
    (data / "User").mkdir()
    (data / "User" / "settings.json").write_text(json.dumps({**QUIET_SETTINGS, **settings}))
    port = free_port()
    env = {**os.environ, "PYTHONPATH": str(ROOT), "VSCODE_PROXY_URI": ""}
    log = (tmp / "code-server.log").open("wb")
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
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=2).read()
                break
            except OSError:
                if proc.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError(
                        "code-server did not start:\n" + (tmp / "code-server.log").read_text()
                    ) from None
                time.sleep(0.2)
        yield f"http://127.0.0.1:{port}/?folder={workspace}"
    finally:
        os.killpg(proc.pid, 15)
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, 9)
            proc.wait()
        log.close()


def output_channel(tmp: pathlib.Path) -> str:
    """The extension's output channel ("qwen-lsp"): the server's log as VS Code shows it."""
    output = sorted((tmp / "user-data" / "logs").glob("**/*qwen-lsp.log"))
    return output[-1].read_text(errors="replace") if output else ""


def drive(
    script: pathlib.Path, config: dict[str, Any], timeout: float
) -> subprocess.CompletedProcess[str]:
    """Run a playwright driver (`node SCRIPT CONFIG.json`) with the browser's paths added to
    `config` (which must hold `artifacts`, a folder)."""
    config = {**config, "chromium": CHROMIUM, "playwright": str(PLAYWRIGHT)}
    path = pathlib.Path(config["artifacts"]) / "drive.json"
    path.write_text(json.dumps(config))
    return subprocess.run(
        [str(NODE), str(script), str(path)], capture_output=True, text=True, timeout=timeout
    )
