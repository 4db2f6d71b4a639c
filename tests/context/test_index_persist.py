"""The persisted index: restarts parse nothing unchanged, changes and deletions are seen."""

from __future__ import annotations

import multiprocessing
import os
import threading
import time
from pathlib import Path
from typing import Any

import pytest

import context.parse_pool as pool_module
import context.store as store_module
from context.index import WorkspaceIndex


def write(root: Path, files: dict[str, str]) -> None:
    for rel, text in files.items():
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)


def bump_mtime(path: Path) -> None:
    st = path.stat()
    os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns + 5_000_000_000))


FILES = {
    "app/__init__.py": "",
    "app/models.py": "class User:\n    def name(self):\n        return 'x'\n",
    "app/views.py": "from .models import User\n\ndef index():\n    return User()\n",
    "web/main.ts": "export function start(): void {}\n",
}


@pytest.fixture
def ws(tmp_path: Path) -> tuple[Path, str]:
    root = tmp_path / "ws"
    write(root, FILES)
    return root, str(tmp_path / "cache")


def test_restart_on_unchanged_workspace_parses_nothing(ws: tuple[Path, str]) -> None:
    root, cache = ws
    with WorkspaceIndex([str(root)], cache_dir=cache) as first:
        stats = first.build()
        assert (stats.files, stats.parsed, stats.reused) == (4, 4, 0)
        assert stats.definitions == 4
        assert stats.languages == {"python": 3, "typescript": 1}
        assert len(first.database_paths()) == 1
    with WorkspaceIndex([str(root)], cache_dir=cache) as second:
        stats = second.build()
        assert (stats.files, stats.parsed, stats.reused) == (4, 0, 4)
        assert stats.definitions == 4
        # Symbols come back from the database on demand.
        [user] = second.definitions_named("User")
        assert (user.kind, user.start_line, user.end_line) == ("class", 0, 2)
        views = os.path.join(os.path.realpath(root), "app", "views.py")
        symbols = second.file(views)
        assert symbols is not None and symbols.imports[0].module == ".models"
        assert "User" in symbols.references


def test_changed_file_is_parsed_again_and_touched_file_is_not(ws: tuple[Path, str]) -> None:
    root, cache = ws
    with WorkspaceIndex([str(root)], cache_dir=cache) as index:
        index.build()
    models = root / "app" / "models.py"
    models.write_text("class Account:\n    pass\n")
    bump_mtime(models)
    views = root / "app" / "views.py"
    bump_mtime(views)  # same content, new mtime: the hash says no parse is needed
    with WorkspaceIndex([str(root)], cache_dir=cache) as index:
        stats = index.build()
        assert (stats.parsed, stats.reused) == (1, 3)
        assert index.definitions_named("User") == []
        assert [d.name for d in index.definitions_named("Account")] == ["Account"]
    with WorkspaceIndex([str(root)], cache_dir=cache) as index:
        stats = index.build()  # the new mtimes were saved
        assert (stats.parsed, stats.reused) == (0, 4)


def test_deleted_and_added_files(ws: tuple[Path, str]) -> None:
    root, cache = ws
    with WorkspaceIndex([str(root)], cache_dir=cache) as index:
        index.build()
        (root / "web" / "main.ts").unlink()
        write(root, {"app/new.py": "def fresh():\n    pass\n"})
        stats = index.build()
        assert (stats.files, stats.parsed, stats.removed) == (4, 1, 1)
        assert index.definitions_named("start") == []
        assert [d.name for d in index.definitions_named("fresh")] == ["fresh"]
    with WorkspaceIndex([str(root)], cache_dir=cache) as index:
        stats = index.build()
        assert (stats.files, stats.parsed, stats.removed) == (4, 0, 0)
        assert not any(p.endswith("main.ts") for p in index.files())


def test_schema_version_change_rebuilds(
    ws: tuple[Path, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    root, cache = ws
    with WorkspaceIndex([str(root)], cache_dir=cache) as index:
        index.build()
    monkeypatch.setattr(store_module, "SCHEMA_VERSION", "999.0")
    with WorkspaceIndex([str(root)], cache_dir=cache) as index:
        assert index.build().parsed == 4


def test_corrupt_database_is_recreated(ws: tuple[Path, str]) -> None:
    root, cache = ws
    with WorkspaceIndex([str(root)], cache_dir=cache) as index:
        index.build()
        [db] = index.database_paths()
    for suffix in ("-wal", "-shm"):
        if os.path.exists(db + suffix):
            os.remove(db + suffix)
    Path(db).write_bytes(b"this is not a database" * 100)
    with WorkspaceIndex([str(root)], cache_dir=cache) as index:
        assert index.build().parsed == 4


@pytest.mark.skipif(os.name != "posix", reason="POSIX permissions")
def test_the_index_is_readable_by_its_owner_only(ws: tuple[Path, str]) -> None:
    """It holds signatures and docstrings of private code: 0700 folder, 0600 files, also
    after a corrupt database was recreated."""
    root, cache = ws
    old = os.umask(0o022)
    try:
        with WorkspaceIndex([str(root)], cache_dir=cache) as index:
            index.build()
            [db] = index.database_paths()
            files = [db + s for s in ("", "-wal", "-shm") if os.path.exists(db + s)]
            assert len(files) == 3
            assert [oct(os.stat(f).st_mode & 0o777) for f in files] == ["0o600"] * 3
        assert oct(os.stat(os.path.dirname(db)).st_mode & 0o777) == "0o700"
        for suffix in ("-wal", "-shm"):
            if os.path.exists(db + suffix):
                os.remove(db + suffix)
        Path(db).write_bytes(b"this is not a database" * 100)
        os.chmod(db, 0o644)
        with WorkspaceIndex([str(root)], cache_dir=cache) as index:
            assert index.build().parsed == 4
            assert oct(os.stat(db).st_mode & 0o777) == "0o600"
    finally:
        os.umask(old)


def test_no_persistence_writes_nothing(ws: tuple[Path, str]) -> None:
    root, cache = ws
    with WorkspaceIndex([str(root)], cache_dir="") as index:
        index.build()
        assert index.database_paths() == []
        assert len(index.definitions_named("User")) == 1
    assert not os.path.exists(cache)


def test_parallel_build_matches_serial_build(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    files = {
        f"pkg/m{i}.py": f"def f{i}():\n    return {i}\n\nclass C{i}:\n    pass\n" for i in range(40)
    }
    files["pkg/bin.py"] = "\x00binary"
    write(tmp_path, files)
    with WorkspaceIndex([str(tmp_path)], cache_dir="", workers=1) as serial:
        expected = serial.build()
        expected_defs = {p: serial.file(p) for p in serial.files()}
    monkeypatch.setattr(pool_module, "PARALLEL_THRESHOLD", 2)
    monkeypatch.setattr(pool_module, "BATCH_FILES", 7)
    seen: list[tuple[int, int]] = []
    with WorkspaceIndex([str(tmp_path)], cache_dir=str(tmp_path / "c"), workers=2) as parallel:
        stats = parallel.build(progress=lambda done, total, path: seen.append((done, total)))
        assert (stats.files, stats.definitions, stats.parsed, stats.skipped) == (
            expected.files,
            expected.definitions,
            40,
            1,
        )
        assert {p: parallel.file(p) for p in parallel.files()} == expected_defs
    assert seen[-1] == (41, 41)


def test_cancel_stops_and_keeps_what_was_done(tmp_path: Path) -> None:
    write(tmp_path, {f"m{i}.py": f"def f{i}(): pass\n" for i in range(10)})
    cancel = threading.Event()

    def progress(done: int, total: int, path: str) -> None:
        if done >= 3:
            cancel.set()

    with WorkspaceIndex([str(tmp_path)], cache_dir=str(tmp_path / "c"), workers=1) as index:
        stats = index.build(progress=progress, cancel=cancel)
        assert stats.cancelled
        assert 3 <= stats.files < 10
    with WorkspaceIndex([str(tmp_path)], cache_dir=str(tmp_path / "c"), workers=1) as index:
        stats = index.build()  # the rest is done now, the first ones are reused
        assert stats.files == 10 and stats.reused >= 3


def test_parallel_build_saves_as_it_goes_and_a_cancel_keeps_it(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    import sqlite3

    write(tmp_path, {f"pkg/m{i}.py": f"def f{i}():\n    return {i}\n" for i in range(60)})
    monkeypatch.setattr(pool_module, "PARALLEL_THRESHOLD", 2)
    monkeypatch.setattr(pool_module, "BATCH_FILES", 4)
    monkeypatch.setattr(pool_module, "SAVE_EVERY", 8)
    cancel = threading.Event()
    saved_while_building: list[int] = []
    cache = tmp_path / "c"

    def progress(done: int, total: int, path: str) -> None:
        if done >= 20 and not cancel.is_set():
            (db,) = [f for f in os.listdir(cache) if f.endswith(".sqlite3")]
            with sqlite3.connect(cache / db) as conn:
                saved_while_building.append(
                    conn.execute("SELECT count(*) FROM files").fetchone()[0]
                )
            cancel.set()

    with WorkspaceIndex([str(tmp_path)], cache_dir=str(cache), workers=2) as index:
        stats = index.build(progress=progress, cancel=cancel)
        assert stats.cancelled and 20 <= stats.files < 60
        kept = stats.files
    # Rows were written while the workers were still parsing, not only at the end.
    assert saved_while_building and saved_while_building[0] >= 8
    with WorkspaceIndex([str(tmp_path)], cache_dir=str(cache), workers=1) as index:
        stats = index.build()
        assert stats.files == 60
        assert stats.reused == kept and stats.parsed == 60 - kept


def test_build_in_a_thread_while_documents_change(tmp_path: Path) -> None:
    write(tmp_path, {f"pkg/m{i}.py": f"def f{i}():\n    pass\n" for i in range(30)})
    path = os.path.join(os.path.realpath(tmp_path), "pkg", "m0.py")
    errors: list[BaseException] = []
    with WorkspaceIndex([str(tmp_path)], cache_dir=str(tmp_path / "c")) as index:

        def run() -> None:
            try:
                index.build()
            except BaseException as exc:  # pragma: no cover - reported below
                errors.append(exc)

        thread = threading.Thread(target=run)
        thread.start()
        deadline = time.monotonic() + 30
        i = 0
        while thread.is_alive() and time.monotonic() < deadline:
            index.update_document(path, f"def edited{i}():\n    pass\n")
            index.definitions_named(f"edited{i}")
            i += 1
        thread.join()
        index.update_document(path, "def final():\n    pass\n")
        assert not errors
        assert [d.path for d in index.definitions_named("final")] == [path]
        assert index.definitions_named("f0") == []  # the open document shadows the disk


def _crash_on_marker(source: bytes, language: str, references: bool = True) -> Any:
    """extract_source as in a parser that crashes the process on one file."""
    if b"CRASH_THE_PARSER" in source:
        os._exit(3)
    return _real_extract_source(source, language, references)


_real_extract_source = pool_module.sym.extract_source


def test_a_file_that_kills_its_parse_worker_is_skipped_and_the_rest_indexed(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A parser crash (a segfault in a grammar) costs that file, never the build and never
    the server: the dead worker's batch is retried file by file in a new pool, and only
    the file that kills a worker again is skipped (and not retried while unchanged)."""
    files = {f"pkg/m{i}.py": f"def f{i}():\n    return {i}\n" for i in range(40)}
    files["pkg/bad.py"] = "# CRASH_THE_PARSER\ndef bad():\n    pass\n"
    write(tmp_path, files)
    monkeypatch.setattr(pool_module.sym, "extract_source", _crash_on_marker)
    # Workers forked from this process inherit the crashing extractor.
    monkeypatch.setattr(pool_module, "_pool_context", lambda: multiprocessing.get_context("fork"))
    monkeypatch.setattr(pool_module, "PARALLEL_THRESHOLD", 2)
    monkeypatch.setattr(pool_module, "BATCH_FILES", 8)
    cache = tmp_path / "c"
    with WorkspaceIndex([str(tmp_path)], cache_dir=str(cache), workers=2) as index:
        stats = index.build()
        assert stats.files == 40 and stats.skipped == 1 and not stats.cancelled
        assert {d.name for p in index.files() for d in index.file(p).definitions} == {
            f"f{i}" for i in range(40)
        }
    with WorkspaceIndex([str(tmp_path)], cache_dir=str(cache), workers=2) as index:
        stats = index.build()  # unchanged: nothing parsed, the bad file not tried again
        assert stats.parsed == 0 and stats.files == 40


def test_a_full_disk_is_said_once_and_the_index_goes_on_in_memory(
    ws: tuple[Path, str], caplog: pytest.LogCaptureFixture
) -> None:
    """SQLite rolls back by itself when the disk is full; the store must report that error,
    not a failed second rollback, and once rather than for every file saved."""
    root, cache = ws
    with WorkspaceIndex([str(root)], cache_dir=cache) as index:
        index.build()
        [store] = index._persistence.opened()
        pages = store._conn.execute("PRAGMA page_count").fetchone()[0]
        store._conn.execute(f"PRAGMA max_page_count = {pages}")  # no room left
        for n in range(3):
            path = root / "app" / f"new{n}.py"
            doc = "A long docstring. " * 60
            path.write_text(
                "".join(f'def fresh_{n}_{k}():\n    """{doc}"""\n\n' for k in range(100))
            )
            index.update_file(str(path))
        saving = [r for r in caplog.records if "cannot save" in r.getMessage()]
        assert len(saving) == 1, [r.getMessage() for r in caplog.records]
        assert "full" in saving[0].getMessage()
        assert [d.name for d in index.definitions_named("fresh_2_99")] == ["fresh_2_99"]


def test_a_restart_counts_files_still_skipped_as_skipped(tmp_path: Path) -> None:
    """A binary file skipped at the first build is not 'reused' at the next: the counts of
    `qwen-lsp index` stay true to what the index holds."""
    (tmp_path / "ws").mkdir()
    (tmp_path / "ws" / "a.py").write_text("def a(): pass\n")
    (tmp_path / "ws" / "blob.py").write_bytes(b"\x00\x01" * 50)
    cache = str(tmp_path / "cache")
    with WorkspaceIndex([str(tmp_path / "ws")], cache_dir=cache) as index:
        first = index.build()
    with WorkspaceIndex([str(tmp_path / "ws")], cache_dir=cache) as index:
        again = index.build()
    assert (first.parsed, first.reused, first.skipped) == (1, 0, 1)
    assert (again.parsed, again.reused, again.skipped) == (0, 1, 1)
