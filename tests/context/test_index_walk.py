"""What the index walks into and what it leaves out."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from context.index import WorkspaceIndex
from context.walk import read_regular


def write(root: Path, files: dict[str, str | bytes]) -> None:
    for rel, content in files.items():
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        if isinstance(content, bytes):
            path.write_bytes(content)
        else:
            path.write_text(content)


def indexed(root: Path, **options: object) -> list[str]:
    with WorkspaceIndex([str(root)], cache_dir="", **options) as index:  # type: ignore[arg-type]
        index.build()
        real = os.path.realpath(root)
        return [os.path.relpath(p, real).replace(os.sep, "/") for p in index.files()]


def test_gitignore_at_every_level_with_negation(tmp_path: Path) -> None:
    write(
        tmp_path,
        {
            ".gitignore": "secret.py\n*.gen.py\n!keep.gen.py\nout/\n/rooted.py\n",
            "main.py": "",
            "secret.py": "",
            "a.gen.py": "",
            "keep.gen.py": "",
            "rooted.py": "",
            "out/x.py": "",
            "sub/rooted.py": "",  # `/rooted.py` is anchored to the root's folder
            "sub/.gitignore": "local.py\n!secret.py\n",
            "sub/local.py": "",
            "sub/secret.py": "",  # re-included by the deeper .gitignore
            "sub/deeper/local.py": "",
            "sub/deeper/ok.py": "",
        },
    )
    assert indexed(tmp_path) == [
        "keep.gen.py",
        "main.py",
        "sub/deeper/ok.py",
        "sub/rooted.py",
        "sub/secret.py",
    ]


def test_ignored_folder_is_not_entered_and_info_exclude(tmp_path: Path) -> None:
    write(
        tmp_path,
        {
            ".gitignore": "generated/\n",
            "generated/.gitignore": "!*.py\n",  # cannot re-include below an ignored folder
            "generated/x.py": "",
            ".git/info/exclude": "scratch.py\n",
            "scratch.py": "",
            "kept.py": "",
        },
    )
    assert indexed(tmp_path) == ["kept.py"]


def test_exclude_globs(tmp_path: Path) -> None:
    write(tmp_path, {"docs/conf.py": "", "src/a.py": "", "src/a_test.py": "", "b.py": ""})
    assert indexed(tmp_path, exclude=["docs/", "*_test.py"]) == ["b.py", "src/a.py"]


def test_vendored_generated_and_virtualenv_folders_are_skipped(tmp_path: Path) -> None:
    write(
        tmp_path,
        {
            "node_modules/lib/index.js": "",
            ".venv/lib/site.py": "",
            "myenv/pyvenv.cfg": "home = /usr\n",
            "myenv/lib/x.py": "",
            "target/debug/build.rs": "",
            "dist/bundle.js": "",
            "build/lib/x.py": "",
            "__pycache__/x.py": "",
            "vendor/github.com/x/y.go": "",
            ".git/hooks/x.py": "",
            "pkg.egg-info/x.py": "",
            "app.min.js": "",
            "src/app.js": "",
            "notes.txt": "",
            "Makefile": "",
        },
    )
    assert indexed(tmp_path) == ["src/app.js"]


def test_symlinks_out_of_the_root_are_not_followed(tmp_path: Path) -> None:
    root, outside = tmp_path / "root", tmp_path / "outside"
    write(outside, {"secret.py": "def leaked(): pass\n", "dir/more.py": ""})
    write(root, {"pkg/real.py": "def real(): pass\n"})
    os.symlink(outside / "secret.py", root / "link.py")
    os.symlink(outside / "dir", root / "linkdir")
    os.symlink(root / "pkg", root / "alias")  # inside the root: fine, indexed once
    os.symlink(root, root / "pkg" / "loop")  # a cycle must end
    with WorkspaceIndex([str(root)], cache_dir="") as index:
        index.build()
        real = os.path.realpath(root)
        assert index.files() == [os.path.join(real, "pkg", "real.py")]
        assert index.definitions_named("leaked") == []
        assert not index.is_indexable(str(root / "link.py"))
        assert not index.is_indexable(str(outside / "secret.py"))


def test_binary_and_oversize_files_are_skipped(tmp_path: Path) -> None:
    write(
        tmp_path,
        {
            "blob.py": b"x = 1\n\x00\x01\x02" + b"\x00" * 100,
            "big.py": "x = 1\n" * 100,
            "small.py": "def small(): pass\n",
        },
    )
    with WorkspaceIndex([str(tmp_path)], cache_dir="", max_file_size=200) as index:
        stats = index.build()
        assert [os.path.basename(p) for p in index.files()] == ["small.py"]
        assert stats.skipped == 1  # the binary one; the big one is left out by the walk
        assert not index.is_indexable(str(tmp_path / "big.py"))


def test_invalid_utf8_does_not_crash_the_index(tmp_path: Path) -> None:
    write(
        tmp_path,
        {"latin.py": b"# caf\xe9\ndef caf\xe9():\n    pass\ndef ok():\n    return '\xff'\n"},
    )
    with WorkspaceIndex([str(tmp_path)], cache_dir="") as index:
        index.build()
        assert [d.name for d in index.definitions_named("ok")] == ["ok"]
        text = index.text(index.files()[0])
        assert text is not None and "\ufffd" in text


_FIFO_CHECK = """
import os, sys
from context.index import WorkspaceIndex
from context.parse_pool import index_file
from context.walk import read_regular
root = sys.argv[1]
with WorkspaceIndex([root], cache_dir="") as index:
    index.build()
    assert sorted(os.path.basename(p) for p in index.files()) == ["a.py", "app.ts", "main.go"]
    for name in ("main.go", "app.ts"):
        path = os.path.join(root, name)
        for imp in index.file(path).imports:
            index.resolve_import(path, imp)  # reads go.mod / tsconfig.json
    fifo = os.path.join(root, "x.py")
    assert index.text(fifo) is None
    assert index.update_file(fifo) is None
    assert index_file(fifo, "python", None, 1 << 20).status == "skipped"
    assert read_regular(fifo, 100) == (None, os.stat(fifo))
print("ok")
"""


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="FIFOs are POSIX")
def test_a_fifo_named_like_source_never_blocks_the_index(tmp_path: Path) -> None:
    """Opening a FIFO waits for a writer forever: the walk, the parse workers (a file
    that turned into a FIFO after the walk), the file watcher and every reader of
    workspace files (.gitignore, go.mod, tsconfig.json, a file's text) leave it.
    Run in a child process, so that a regression fails here instead of hanging."""
    write(
        tmp_path,
        {
            "a.py": "def a(): pass\n",
            "main.go": 'package main\n\nimport "example.com/m/pkg"\n',
            "app.ts": 'import { x } from "@/lib/x";\n',
        },
    )
    for name in ("x.py", ".gitignore", "go.mod", "tsconfig.json"):
        os.mkfifo(tmp_path / name)
    done = subprocess.run(
        [sys.executable, "-c", _FIFO_CHECK, os.path.realpath(tmp_path)],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=Path(__file__).resolve().parents[2],
    )
    assert done.returncode == 0 and done.stdout.strip() == "ok", done.stderr


def test_read_regular_stops_at_the_limit(tmp_path: Path) -> None:
    write(tmp_path, {"ok.py": "x = 1\n", "big.py": "x = 1\n" * 100})
    data, st = read_regular(str(tmp_path / "ok.py"), 6)
    assert data == b"x = 1\n" and st is not None and st.st_size == 6
    data, st = read_regular(str(tmp_path / "big.py"), 100)
    assert data is None and st is not None  # refused, with its stat
    assert read_regular(str(tmp_path / "missing.py"), 100) == (None, None)
    assert read_regular(str(tmp_path), 100)[0] is None  # a folder


def test_text_refuses_a_file_over_the_limit(tmp_path: Path) -> None:
    """A big log opened in the editor, or a source file grown huge, is not read whole."""
    write(tmp_path, {"small.py": "x = 1\n", "huge.py": "x = 1\n" * 1000})
    with WorkspaceIndex([str(tmp_path)], cache_dir="", max_file_size=1000) as index:
        assert index.text(str(tmp_path / "small.py")) == "x = 1\n"
        assert index.text(str(tmp_path / "huge.py")) is None


def test_is_indexable(tmp_path: Path) -> None:
    write(tmp_path, {".gitignore": "ignored/\n", "ignored/a.py": "", "a.py": "", "a.txt": ""})
    with WorkspaceIndex([str(tmp_path)], cache_dir="") as index:
        assert index.is_indexable(str(tmp_path / "a.py"))
        assert index.is_indexable(str(tmp_path / "new_unsaved.py"))
        assert not index.is_indexable(str(tmp_path / "ignored" / "a.py"))
        assert not index.is_indexable(str(tmp_path / "a.txt"))
        assert not index.is_indexable(str(tmp_path / "node_modules" / "x.js"))
        assert not index.is_indexable("/somewhere/else.py")
        assert index.root_of(os.path.realpath(tmp_path / "a.py")) == os.path.realpath(tmp_path)


def test_nested_roots_own_their_files(tmp_path: Path) -> None:
    write(tmp_path, {"outer.py": "", "inner/inner.py": ""})
    with WorkspaceIndex([str(tmp_path), str(tmp_path / "inner")], cache_dir="") as index:
        index.build()
        assert len(index.files()) == 2
        inner = os.path.realpath(tmp_path / "inner" / "inner.py")
        assert index.root_of(inner) == os.path.realpath(tmp_path / "inner")


def test_one_unreadable_pattern_does_not_drop_the_others(tmp_path: Path) -> None:
    """git ignores a `.gitignore` line it cannot read, and only that line: a gitignored
    settings file must stay out of the index (and so of every prompt) when a neighbour
    line is broken. The same for `context.exclude`."""
    write(
        tmp_path,
        {
            ".gitignore": "local_settings.py\n[z-a]*.bak\n",
            "local_settings.py": 'SECRET_KEY = "hunter2"\n',
            "fixtures/data.py": "X = 1\n",
            "app.py": "def app(): pass\n",
        },
    )
    assert indexed(tmp_path, exclude=("fixtures/", "**/[z-a]")) == ["app.py"]


@pytest.mark.skipif(
    not os.path.exists("/proc/2/exe") and not os.path.islink("/proc/2/exe"), reason="Linux /proc"
)
def test_a_link_that_cannot_be_read_costs_that_link_only(tmp_path: Path) -> None:
    """realpath raises for a link readlink refuses (/proc/2/exe, a kernel thread's):
    one such link must not end the whole build."""
    write(tmp_path, {"a.py": "def a(): pass\n"})
    os.symlink("/proc/2/exe", tmp_path / "b.py")
    assert indexed(tmp_path) == ["a.py"]


@pytest.mark.skipif(sys.platform != "linux", reason="file names are bytes on Linux only")
def test_a_file_name_that_is_not_utf8_does_not_stop_the_index_being_saved(
    tmp_path: Path,
) -> None:
    root = tmp_path / "ws"
    write(root, {f"m{i}.py": f"def f{i}(): pass\n" for i in range(5)})
    with open(os.fsencode(root) + b"/caf\xe9.py", "wb") as f:
        f.write(b"def cafe(): pass\n")
    cache = str(tmp_path / "cache")
    with WorkspaceIndex([str(root)], cache_dir=cache) as index:
        first = index.build()
        assert [d.name for d in index.definitions_named("cafe")] == ["cafe"]
    with WorkspaceIndex([str(root)], cache_dir=cache) as index:
        again = index.build()
    assert first.parsed == 6 and again.parsed == 1 and again.reused == 5  # only that one
