"""The VS Code extension (editors/vscode): its settings, its build and its client side.

VS Code itself cannot run here, so the extension is checked apart from it: its
manifest against the server's settings tree, a type check, the real server driven from node
with the protocol libraries VS Code's client uses and the extension's own settings module,
and packaging. The node tests need `npm ci --prefix editors/vscode` first (nothing is
downloaded here); without node or node_modules they are skipped.
"""

from __future__ import annotations

import dataclasses
import json
import os
import pathlib
import re
import shutil
import subprocess
import sys
import typing
import zipfile
from typing import Any

import pytest

from lsp_server import settings as server_settings

ROOT = pathlib.Path(__file__).resolve().parents[2]
EXTENSION = ROOT / "editors" / "vscode"
MANIFEST = EXTENSION / "package.json"
NODE_MODULES = EXTENSION / "node_modules"
DOCS = ROOT / "docs" / "configuration.md"

# Read by the extension only; documented in editors/vscode/README.md.
CLIENT_ONLY = {"qwenLsp.server.command"}

NODE = shutil.which("node")
needs_node = pytest.mark.skipif(
    NODE is None or not NODE_MODULES.is_dir(),
    reason="needs node and editors/vscode/node_modules (run `npm ci --prefix editors/vscode`)",
)


def declared() -> dict[str, dict[str, Any]]:
    manifest = json.loads(MANIFEST.read_text())
    properties: dict[str, dict[str, Any]] = {}
    for block in manifest["contributes"]["configuration"]:
        properties.update(block["properties"])
    return properties


def server_schema() -> dict[str, dict[str, Any]]:
    """What package.json should say for each key of lsp_server.settings.Settings."""
    schema: dict[str, dict[str, Any]] = {}
    root = server_settings.Settings()
    for section in dataclasses.fields(root):
        group = getattr(root, section.name)
        hints = typing.get_type_hints(type(group))
        for field in dataclasses.fields(group):
            typ, default = hints[field.name], getattr(group, field.name)
            entry: dict[str, Any] = {"default": default}
            if typing.get_origin(typ) is typing.Literal:
                entry.update(type="string", enum=list(typing.get_args(typ)))
            elif typ is bool:
                entry["type"] = "boolean"
            elif typ is int:
                bounds = server_settings.int_range(type(group), field.name)
                low, high = bounds.low, bounds.high
                entry.update(type="integer", minimum=low)
                if high is not None:
                    entry["maximum"] = high
            elif typ is str:
                entry["type"] = "string"
            elif typing.get_origin(typ) is list and typing.get_args(typ) == (str,):
                entry.update(type="array", items={"type": "string"})
            elif typing.get_origin(typ) is dict and typing.get_args(typ) == (str, bool):
                entry.update(type="object", additionalProperties={"type": "boolean"})
            else:
                raise AssertionError(f"no JSON schema for {typ!r}: extend this test")
            wire = server_settings.to_camel(section.name)
            key = f"{server_settings.SECTION}.{wire}.{server_settings.to_camel(field.name)}"
            schema[key] = entry
    return schema


def test_manifest_declares_exactly_the_server_settings() -> None:
    properties = declared()
    expected = server_schema()
    assert set(properties) - CLIENT_ONLY == set(expected)
    assert CLIENT_ONLY <= set(properties)
    for key, want in expected.items():
        got = {
            k: properties[key][k]
            for k in (
                "type",
                "default",
                "enum",
                "minimum",
                "maximum",
                "items",
                "additionalProperties",
            )
            if k in properties[key]
        }
        assert got == want, key
    for key, prop in properties.items():
        assert prop.get("markdownDescription", "").strip(), f"{key} has no markdownDescription"
    docs = DOCS.read_text()
    server_part, _, client_part = docs.partition("\n## Client settings\n")
    documented = set(re.findall(r"^### `(qwenLsp\.[\w.]+)`", server_part, re.M))
    assert documented == set(expected), "docs/configuration.md and the server disagree"
    client_documented = set(re.findall(r"^### `(qwenLsp\.[\w.]+)`", client_part, re.M))
    assert client_documented == CLIENT_ONLY, "client-only keys in docs/configuration.md"


def test_manifest_serves_every_language_and_starts_lazily() -> None:
    """Every saved file and untitled buffer is synced, whatever its language (the server
    applies `completion.languages`); the extension starts the server for the first
    document it would complete rather than with VS Code."""
    manifest = json.loads(MANIFEST.read_text())
    assert manifest["activationEvents"] == ["onStartupFinished"]
    server_ts = (EXTENSION / "src" / "server.ts").read_text()
    assert (
        "export const DOCUMENTS = [{ scheme: 'file' }, { scheme: 'untitled' }, "
        "{ scheme: 'vscode-notebook-cell' }];" in server_ts
    )
    assert "documentSelector: DOCUMENTS," in server_ts
    assert "language:" not in server_ts  # no language filter left in the client
    extension_ts = (EXTENSION / "src" / "extension.ts").read_text()
    assert "onDidOpenTextDocument" in extension_ts and "completesLanguage(" in extension_ts
    # Turning a language on while its documents are open starts a waiting server.
    assert "affectsConfiguration(`${SECTION}.completion`)" in extension_ts
    assert "server.waiting = true" in extension_ts
    commands = {c["command"] for c in manifest["contributes"]["commands"]}
    extension_ts = (EXTENSION / "src" / "extension.ts").read_text()
    assert commands == {"qwenLsp.restart", "qwenLsp.toggle", "qwenLsp.showStats"}
    assert commands == set(re.findall(r"registerCommand\('([\w.]+)'", extension_ts))


def tsc(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [
            NODE or "node",
            str(NODE_MODULES / "typescript" / "bin" / "tsc"),
            "-p",
            str(EXTENSION),
            *args,
        ],
        capture_output=True,
        text=True,
        timeout=120,
    )


@needs_node
def test_extension_type_checks() -> None:
    result = tsc("--noEmit")
    assert result.returncode == 0, result.stdout + result.stderr


@needs_node
def test_extension_settings_drive_the_real_server(
    qwen2_model: pathlib.Path, tmp_path: pathlib.Path
) -> None:
    out = tmp_path / "out"
    build = tsc("--outDir", str(out))
    assert build.returncode == 0, build.stdout + build.stderr
    workspace = tmp_path / "workspace"
    workspace.mkdir()
    max_tokens = 3
    user_settings = {
        "qwenLsp.model.path": str(qwen2_model),
        "qwenLsp.model.threads": 1,
        "qwenLsp.model.contextSize": 4096,
        "qwenLsp.completion.maxTokens": max_tokens,
        "qwenLsp.context.enabled": False,
        "qwenLsp.engine.warmup": False,
        "qwenLsp.engine.prefetch": False,
        "qwenLsp.server.command": ["not-sent-to-the-server"],
        "qwenLsp.completion.languages": {"yaml": False},  # merged over the default map
    }
    env = {
        **os.environ,
        "NODE_PATH": str(NODE_MODULES),  # the compiled test lives outside the extension folder
        "PYTHONPATH": str(ROOT),
        "QWEN_LSP_SERVER_COMMAND": json.dumps([sys.executable, "-m", "lsp_server"]),
        "QWEN_LSP_TEST_SETTINGS": json.dumps(user_settings),
    }
    run = subprocess.run(
        [NODE or "node", str(out / "test" / "e2e.js"), str(MANIFEST), str(workspace)],
        capture_output=True,
        text=True,
        timeout=120,
        env=env,
    )
    assert run.returncode == 0, run.stderr[-4000:]
    data = json.loads(run.stdout)

    assert data["inlineCompletionProvider"] is not None  # else VS Code never asks
    # Notebooks are synced whole (VS Code's client then sends their cells together).
    (selector,) = data["notebookDocumentSync"]["notebookSelector"]
    assert selector == {"notebook": "*", "cells": [{"language": "*"}]}
    options = data["initializationOptions"]
    # The server's sections only: no client-only keys.
    assert set(options) == {
        "model",
        "completion",
        "context",
        "engine",
        "codeActions",
        "protocol",
        "diagnostics",
    }
    assert options["completion"]["maxTokens"] == max_tokens
    assert options["model"]["path"] == str(qwen2_model)
    assert options["model"]["contextSize"] == 4096
    assert options["context"]["exclude"] == []  # an untouched key: the manifest's default
    assert data["messages"] == [], "package.json's defaults must all be valid for the server"
    assert data["pulls"], "the server should pull workspace/configuration"

    items = data["items"]
    assert len(items) == 1 and items[0]["insertText"].strip()
    stats = data["stats"]
    assert stats["model"] == "ready" and stats["requests"] == 1
    (recent,) = [r for r in stats["recent"] if r["kind"] == "completion"]
    assert recent["outcome"] == "ok"
    assert 1 <= recent["generatedTokens"] <= max_tokens  # the setting reached the engine
    assert re.fullmatch(r"qwen-lsp: ready · \d+ ms", data["status"]["text"])
    assert "index off" in data["status"]["detail"] and data["status"]["level"] == "info"
    assert "shared ×1" in data["status"]["detail"]  # the engine process, one editor on it

    # Any language reaches the server; prose stays off, and the user's map is merged.
    languages = options["completion"]["languages"]
    assert languages["yaml"] is False and languages["markdown"] is False and languages["*"]
    assert data["startsFor"] == {
        "python": True,
        "ruby": True,
        "markdown": False,
        "plaintext": False,
        "yaml": False,
    }
    assert len(data["rubyItems"]) == 1 and data["rubyItems"][0]["insertText"].strip()
    assert data["markdownItems"] == []
    assert data["notBoolean"] == [False, True]  # as the server: such entries are not used
    # The status item in a Markdown note says completions are off there, and before the
    # server starts (no document to complete yet) it is idle, not "stopped".
    assert data["offStatus"]["text"] == "qwen-lsp: off for markdown"
    assert data["offStatus"]["level"] == "info"
    assert data["waitingStatus"]["text"] == "qwen-lsp: idle"
    assert data["waitingStatus"]["level"] == "info"
    # A model not loaded yet: the whole detail fits the hover (it was cut mid-word).
    assert data["idleStatus"]["text"] == "qwen-lsp: not loaded"
    assert data["idleStatus"]["detail"] == "loads at the first completion"

    # completion.enabled: false through didChangeConfiguration, as VS Code sends it
    assert data["disabledItems"] == []
    assert data["pausedStatus"]["text"] == "qwen-lsp: paused"  # qwenLsp.toggle
    failed = data["failedStatus"]  # a failed completion is not shown as a time
    assert failed["text"] == "qwen-lsp: ready · last completion failed"
    assert failed["level"] == "warning"
    assert data["missingProgram"] is None
    assert "qwenLsp.server.command must be" in data["invalidCommand"]["error"]
    assert data["stringCommand"] == {"command": "qwen-lsp", "args": []}
    home = os.path.expanduser("~")
    assert data["homeCommand"] == {
        "command": os.path.join(home, "venv/bin/qwen-lsp"),
        "args": ["--log-file", os.path.join(home, "q.log")],
    }
    assert data["windowsHome"] is False  # ~\ expanded on Windows too


@needs_node
def test_activation_starts_the_server_for_the_first_document_it_completes(
    tmp_path: pathlib.Path,
) -> None:
    """The extension's own `activate`, against a fake `vscode` API and language client
    (editors/vscode/test/activation.ts): a window of notes starts no server (the model
    would take gigabytes for nothing) and says so; a Ruby file, or Markdown turned on,
    starts it once; the status item follows the active file's language."""
    out = tmp_path / "out"
    build = tsc("--outDir", str(out))
    assert build.returncode == 0, build.stdout + build.stderr
    run = subprocess.run(
        [NODE or "node", str(out / "test" / "activation.js")],
        capture_output=True,
        text=True,
        timeout=60,
        env={**os.environ, "NODE_PATH": str(NODE_MODULES)},
    )
    assert run.returncode == 0, run.stderr[-4000:]
    data = json.loads(run.stdout)
    info = 0  # LanguageStatusSeverity.Information
    assert data["notes"]["starts"] == 0
    assert data["notes"]["status"] == {"text": "qwen-lsp: idle", "severity": info}
    assert data["notes"]["selector"] == [
        {"scheme": "file"},
        {"scheme": "untitled"},
        {"scheme": "vscode-notebook-cell"},
    ]
    assert data["otherScheme"] == 0  # an output panel is not a document to complete
    assert data["editorSettings"] == 0  # nor VS Code's own settings.json
    assert data["afterRuby"] == 1  # started once, for the Ruby file
    assert data["markdownTurnedOn"] == 1
    assert data["codeAtStart"] == 1
    assert data["inNotes"] == {"text": "qwen-lsp: off for markdown", "severity": info}
    assert data["inCode"] == {"text": "qwen-lsp: ready", "severity": info}


@needs_node
def test_vsix_packages_one_bundled_file(tmp_path: pathlib.Path) -> None:
    """`npm run package` as a user runs it: prepublish type-checks and bundles (esbuild)
    the extension and the language client into one file, which is all the .vsix holds
    besides the manifest and the README."""
    if not (NODE_MODULES / "@vscode" / "vsce").exists() or not (NODE_MODULES / "esbuild").exists():
        pytest.skip("vsce and esbuild are not installed (npm ci --prefix editors/vscode)")
    target = tmp_path / "qwen-lsp.vsix"
    run = subprocess.run(
        [shutil.which("npm") or "npm", "run", "package", "--", "--out", str(target)],
        cwd=EXTENSION,
        capture_output=True,
        text=True,
        timeout=180,
        stdin=subprocess.DEVNULL,
    )
    assert run.returncode == 0, run.stdout[-2000:] + run.stderr[-2000:]
    names = set(zipfile.ZipFile(target).namelist())
    manifest = json.loads(MANIFEST.read_text())
    main = "extension/" + manifest["main"].removeprefix("./")
    assert main in names
    assert not any(
        "/node_modules/" in n or n.startswith(("extension/src/", "extension/out/")) for n in names
    )
    assert len(names) < 15, sorted(names)
    # The bundle carries the language client (no require of it at run time).
    bundle = zipfile.ZipFile(target).read(main).decode()
    assert (
        'require("vscode-languageclient' not in bundle and "textDocument/inlineCompletion" in bundle
    )
