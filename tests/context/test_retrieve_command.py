"""`qwen-lsp context ... --json` as a user runs it: a subprocess from the repository."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

pytest.importorskip("context.index")

REPO = Path(__file__).resolve().parents[2]


def _run(*args: str) -> subprocess.CompletedProcess[str]:
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join(filter(None, [str(REPO), os.environ.get("PYTHONPATH")])),
    }
    return subprocess.run(
        [sys.executable, "-m", "lsp_server", "context", *args],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )


def _workspace(root: Path) -> Path:
    (root / "pkg").mkdir()
    (root / "pkg" / "__init__.py").write_text("")
    (root / "pkg" / "util.py").write_text(
        'def helper(value: int) -> int:\n    """Double a value."""\n    return value * 2\n'
    )
    main = root / "main.py"
    main.write_text(
        "from pkg.util import helper\n\n\ndef run(x):\n    y = helper(x)\n    return y\n"
    )
    return main


def test_json_output_has_the_documented_shape(tmp_path):
    main = _workspace(tmp_path)
    result = _run(f"{main}:5:17", "--workspace", str(tmp_path), "--json", "--no-cache")
    assert result.returncode == 0, result.stderr
    out = json.loads(result.stdout)
    assert set(out) == {"tokens", "prompt", "snippets"}
    assert isinstance(out["tokens"], int) and 0 < out["tokens"] <= 16384
    assert "<|file_sep|>pkg/util.py\n" in out["prompt"]
    helper = [s for s in out["snippets"] if s["path"] == "pkg/util.py"]
    assert helper, out
    snippet = helper[0]
    assert set(snippet) == {"path", "start_line", "end_line", "tokens", "reason", "text"}
    assert (snippet["start_line"], snippet["end_line"]) == (1, 3)  # 1-based, inclusive
    assert snippet["text"].startswith("def helper(value: int) -> int:")
    assert "imported from pkg.util" in snippet["reason"]
    assert sum(s["tokens"] for s in out["snippets"]) >= out["tokens"]


def test_budget_and_chat_format(tmp_path):
    main = _workspace(tmp_path)
    result = _run(
        f"{main}:5:17",
        "--workspace",
        str(tmp_path),
        "--json",
        "--no-cache",
        "--format",
        "chat",
        "--budget",
        "60",
    )
    assert result.returncode == 0, result.stderr
    out = json.loads(result.stdout)
    assert out["tokens"] <= 60
    assert out["prompt"].startswith("# File: pkg/util.py (definitions)\n")


def test_text_output_and_bad_input(tmp_path):
    main = _workspace(tmp_path)
    result = _run(f"{main}:5:17", "--workspace", str(tmp_path), "--no-cache")
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("<|file_sep|>pkg/util.py\n")
    assert "tokens" in result.stderr
    bad = _run(f"{main}:99:1", "--workspace", str(tmp_path), "--no-cache")
    assert bad.returncode == 2 and "past the end" in bad.stderr
    missing = _run(f"{tmp_path}/nope.py:1:1", "--workspace", str(tmp_path), "--no-cache")
    assert missing.returncode == 2 and "cannot read" in missing.stderr


@pytest.mark.parametrize("budget", [40, 90, 400])
def test_model_tokenizer_counts_and_the_budget_holds(tmp_path, qwen2_model, budget):
    """With --model the counts are the model's own tokens, and the budget holds for them."""
    import llama_cpp

    main = _workspace(tmp_path)
    result = _run(
        f"{main}:5:17",
        "--workspace",
        str(tmp_path),
        "--json",
        "--no-cache",
        "--model",
        str(qwen2_model),
        "--budget",
        str(budget),
    )
    assert result.returncode == 0, result.stderr
    out = json.loads(result.stdout)
    llama = llama_cpp.Llama(model_path=str(qwen2_model), vocab_only=True, verbose=False)
    real = len(llama.tokenize(out["prompt"].encode(), add_bos=False, special=False))
    assert out["tokens"] == real <= budget
    if budget >= 400:
        assert "def helper(value: int) -> int:" in out["prompt"]


def test_a_bad_model_path_is_reported(tmp_path):
    main = _workspace(tmp_path)
    result = _run(
        f"{main}:5:17", "--workspace", str(tmp_path), "--model", str(tmp_path / "none.gguf")
    )
    assert result.returncode == 2 and "cannot load the tokenizer" in result.stderr
