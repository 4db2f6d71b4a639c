"""A database with damaged pages (a crash during a write on a disk that lies about
flushes, a bad sector) is set aside and rebuilt, said once; before, every start failed
with "database disk image is malformed" and `qwen-lsp index` exited with a traceback."""

from __future__ import annotations

import logging
import os
import subprocess
import sys
from pathlib import Path

import pytest

from context.index import WorkspaceIndex

REPO = Path(__file__).resolve().parents[2]


def workspace(root: Path, files: int = 200) -> None:
    for i in range(files):
        path = root / f"pkg{i % 10}" / f"mod{i}.py"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(
            "".join(f"def function_{i}_{k}(a, b):\n    return a * {k} + b\n\n" for k in range(15))
        )


def damage(db: str) -> None:
    """Garbage over the second half of the file (rows of the files table): the file
    still opens, reading the rows fails."""
    for suffix in ("-wal", "-shm"):
        if os.path.exists(db + suffix):
            os.remove(db + suffix)
    size = os.path.getsize(db)
    assert size > 16 * 4096, size
    with open(db, "r+b") as f:
        start = size // 2 // 4096 * 4096
        f.seek(start)
        f.write(b"\xa5\x5a" * ((size - start) // 2))


def build(root: Path, cache: Path) -> tuple[int, list[str]]:
    with WorkspaceIndex([str(root)], cache_dir=str(cache)) as index:
        parsed = index.build().parsed
        return parsed, index.database_paths()


def test_damaged_pages_are_set_aside_and_the_index_rebuilt(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    root, cache = tmp_path / "ws", tmp_path / "cache"
    workspace(root)
    parsed, [db] = build(root, cache)
    assert parsed == 200
    damage(db)
    with caplog.at_level(logging.WARNING, logger="context"):
        parsed, _ = build(root, cache)
    assert parsed == 200
    said = [r.getMessage() for r in caplog.records if "damaged" in r.getMessage()]
    assert len(said) == 1 and ".corrupt" in said[0], said
    assert os.path.exists(db + ".corrupt")
    assert build(root, cache)[0] == 0  # the new database holds the rebuilt index


def test_the_index_command_rebuilds_a_damaged_database(tmp_path: Path) -> None:
    root, cache = tmp_path / "ws", tmp_path / "cache"
    workspace(root)

    def run() -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "lsp_server", "index", str(root), "--cache-dir", str(cache)],
            capture_output=True,
            text=True,
            timeout=300,
            env={**os.environ, "PYTHONPATH": str(REPO)},
        )

    assert run().returncode == 0
    [db] = [str(p) for p in cache.glob("*.sqlite3")]
    damage(db)
    again = run()
    assert again.returncode == 0, again.stderr[-3000:]
    assert "Traceback" not in again.stderr and "damaged" in again.stderr
