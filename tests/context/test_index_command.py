"""`qwen-lsp index DIR` as a user runs it: a subprocess from the repository root."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]


def run_index(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "lsp_server", "index", *args],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, "PYTHONPATH": str(REPO)},
    )


def test_index_command_json_and_warm_rerun(tmp_path: Path) -> None:
    ws = tmp_path / "ws"
    (ws / "pkg").mkdir(parents=True)
    (ws / "pkg" / "a.py").write_text("def a():\n    pass\n\nclass B:\n    def m(self): pass\n")
    (ws / "web.ts").write_text("export function w(): void {}\n")
    (ws / "deploy.rb").write_text("def deploy\n  run\nend\n")  # read as text
    cache = tmp_path / "cache"
    first = run_index(str(ws), "--cache-dir", str(cache), "--json")
    assert first.returncode == 0, first.stderr
    report = json.loads(first.stdout)
    assert report["files"] == 3
    assert report["definitions"] == 4
    assert report["languages"] == {"python": 1, "ruby": 1, "typescript": 1}
    assert (report["parsed"], report["read_as_text"], report["reused"]) == (2, 1, 0)
    assert report["size_bytes"] > 0 and os.path.exists(report["databases"][0])
    second = json.loads(run_index(str(ws), "--cache-dir", str(cache), "--json").stdout)
    assert (second["parsed"], second["read_as_text"], second["reused"]) == (0, 0, 3)


def test_index_command_text_output_and_errors(tmp_path: Path) -> None:
    (tmp_path / "m.go").write_text("package m\nfunc F() {}\n")
    done = run_index(str(tmp_path), "--no-cache")
    assert done.returncode == 0, done.stderr
    assert "1 files, 1 definitions" in done.stdout
    assert "languages: go 1" in done.stdout
    assert "parsed 1, read as text 0, reused 0" in done.stdout
    assert "not persisted" in done.stdout
    missing = run_index(str(tmp_path / "nope"))
    assert missing.returncode == 2
    assert "not a folder" in missing.stderr
