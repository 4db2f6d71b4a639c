"""Secrets stay in the file they are in: context blocks are redacted before any prompt,
and a secret file is never completed through a serving engine."""

from __future__ import annotations

import asyncio
import pathlib

import pytest

from context.secrets import REDACTED, is_secret_file, redact
from lsp_server.completion.service import ContextQuery
from lsp_server.completion.stats import Stats
from lsp_server.requests import run_code_action
from lsp_server.runtime import Runtime
from lsp_server.settings import Settings
from lsp_server.workspace import Workspace

AWS = "AKIA" + "ABCDEFGHIJKLMNOP"
GITHUB = "ghp_" + "a1B2c3D4e5F6g7H8i9J0k1L2m3N4o5P6q7R8"
RANDOM = "9fQ2x7LmZ4pW8rT1"


@pytest.mark.parametrize(
    "text",
    [
        f"export TOKEN={RANDOM}\n",
        f'API_KEY = "{RANDOM}"\n',
        f"db_password: '{RANDOM}'\n",
        f'{{"client_secret": "{RANDOM}"}}\n',
        f"aws_key = '{AWS}'\n",
        f"auth = {{'gh': '{GITHUB}'}}\n",
        "-----BEGIN RSA PRIVATE KEY-----\nMIIEow" + "A" * 64 + "\n-----END RSA PRIVATE KEY-----\n",
    ],
)
def test_secrets_are_redacted(text: str) -> None:
    out = redact(text)
    assert REDACTED in out
    for secret in (RANDOM, AWS, GITHUB, "MIIEow"):
        assert secret not in out


@pytest.mark.parametrize(
    "text",
    [
        "password = read_password()\n",
        'TOKEN_HEADER = "Authorization"\n',
        "secret_key = settings.SECRET_KEY\n",
        "token = os.environ['TOKEN']\n",
        'export TOKEN="$GITHUB_TOKEN"\n',
        "def check_password(password, hashed):\n    return verify(password, hashed)\n",
    ],
)
def test_code_that_only_names_a_secret_is_unchanged(text: str) -> None:
    assert redact(text) == text


def test_users_patterns_are_redacted_too_and_a_bad_one_is_skipped() -> None:
    text = "INTERNAL = 'corp-7731-alpha'\n"
    assert redact(text, [r"corp-\d+-\w+", "("]) == f"INTERNAL = '{REDACTED}'\n"


def test_secret_files_by_name() -> None:
    for name in (".env", ".env.local", "server.pem", "id_ed25519", "credentials.json", ".npmrc"):
        assert is_secret_file(f"/w/{name}"), name
    for name in ("env.py", "app.py", "keys.md", "README.md"):
        assert not is_secret_file(f"/w/{name}"), name


def test_another_files_secrets_never_reach_the_context(tmp_path: pathlib.Path) -> None:
    (tmp_path / "deploy.sh").write_text(f"#!/bin/sh\nexport TOKEN={RANDOM}\nrun_deploy\n")
    (tmp_path / "config.py").write_text(
        f'API_KEY = "{RANDOM}"\nCUSTOM = "corp-7731-alpha"\n\n\ndef connect():\n'
        "    return API_KEY\n"
    )
    main = tmp_path / "main.py"
    text = "from config import API_KEY, CUSTOM, connect\n\n\ndef go():\n    connect()\n    "
    main.write_text(text)
    settings = Settings()
    settings.context.redact_patterns = [r"corp-\d+-\w+"]
    workspace = Workspace([str(tmp_path)], lambda: settings, cache_dir="")
    workspace.build()
    path = str(main.resolve())
    workspace.update_document(path, text)
    query = ContextQuery(
        path=path, text=text, line=5, character=4, budget_tokens=4000, format="chat"
    )
    blocks = workspace.provider()(query, lambda s: len(s) // 3 + 1)
    shown = "".join(b.text for b in blocks)
    assert "config.py" in shown and "def connect" in shown  # the context is there
    assert RANDOM not in shown and "corp-7731" not in shown
    workspace.close()


def test_a_secret_file_is_not_completed_through_a_serving_engine() -> None:
    runtime = Runtime(Settings(), Stats())
    try:
        assert runtime.completes("/w/.env") and runtime.completes("/w/app.py")
        runtime.settings.model.backend = "openai"
        assert not runtime.completes("/w/.env") and not runtime.completes("/w/id_rsa")
        assert runtime.completes("/w/app.py")
    finally:
        runtime.close()


def test_a_secret_file_gets_no_code_action_through_a_serving_engine() -> None:
    """A code action sends the file's text to the engine too: none is offered on a secret
    file with a serving engine, and one planned before (or sent by hand) is refused."""
    runtime = Runtime(Settings(), Stats())
    text = "def connect(host):\n    return host\n"
    try:
        plans = runtime.plan_code_actions("/w/credentials.py", text, 0, 0, [])
        assert plans  # a local engine: the text stays on the machine
        runtime.settings.model.backend = "openai"
        assert runtime.plan_code_actions("/w/credentials.py", text, 0, 0, []) == []
        assert runtime.plan_code_actions("/w/.env.py", text, 0, 0, []) == []
        assert runtime.plan_code_actions("/w/app.py", text, 0, 0, [])
        outcome = asyncio.run(
            run_code_action(runtime, "k", plans[0], "/w/credentials.py", "credentials.py", text)
        )
        assert outcome.result is None and "secret" in outcome.message, outcome
    finally:
        runtime.close()
