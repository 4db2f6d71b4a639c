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
import pathlib
import re
import shutil
from collections.abc import Iterator

import pytest

from lsp_server.testing import code_server as vscode_web

ROOT = pathlib.Path(__file__).resolve().parents[2]
DRIVER = vscode_web.BROWSER / "drive.mjs"

pytestmark = pytest.mark.skipif(
    vscode_web.missing() is not None,
    reason=f"a real VS Code needs {vscode_web.missing()}: run "
    f"{vscode_web.INSTALL.relative_to(ROOT)} (.ci/run does)",
)

# A module of this repository, as the project file a person opens. The driver types at the
# end of `TYPED_LINE` (an empty line inside a function) and runs a code action on the
# line of a `def`.
PROJECT_FILE = ROOT / "lsp_server" / "completion" / "postprocess.py"


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
    settings = {
        "qwenLsp.model.path": str(qwen2_model),
        "qwenLsp.model.threads": 1,
        "qwenLsp.model.contextSize": 4096,
        "qwenLsp.completion.maxTokens": 12,
        "qwenLsp.completion.multiline": "always",
        "qwenLsp.engine.warmup": False,
        "qwenLsp.engine.prefetch": False,
        "qwenLsp.codeActions.maxTokens": 48,
    }
    config = {
        "file": file,
        "line": line,
        "actionLineText": "def describe(shape, size):",
        "typed": "return ",
        "action": "Add a docstring",
    }
    with vscode_web.code_server(tmp_path, workspace, settings) as url:
        yield url, workspace, {"url": url, **config}


def test_a_session_in_real_vscode(
    vscode: tuple[str, pathlib.Path, dict[str, object]], tmp_path: pathlib.Path
) -> None:
    url, workspace, config = vscode
    artifacts = tmp_path / "screenshots"
    artifacts.mkdir()
    run = vscode_web.drive(DRIVER, {**config, "artifacts": str(artifacts)}, timeout=240)
    channel = vscode_web.output_channel(tmp_path)
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
