"""Extraction never crashes, whatever the bytes: random edits of every language's sample."""

from __future__ import annotations

import random

import pytest
import test_symbols_javascript as web
import test_symbols_python as py
import test_symbols_systems as systems

from context.languages import language_for_path
from context.symbols import extract_source, to_file_symbols

SAMPLES = [
    (systems.GO, "a.go"),
    (systems.RUST, "a.rs"),
    (systems.JAVA, "A.java"),
    (systems.C_HEADER, "a.h"),
    (systems.CPP, "a.cpp"),
    (systems.LUA, "a.lua"),
    (web.TS, "a.ts"),
    (web.TS, "a.tsx"),
    (web.TS, "a.js"),
    (py.SOURCE, "a.py"),
]
TOKENS = [
    b"{",
    b"}",
    b"(",
    b")",
    b"\n",
    b"def ",
    b"class ",
    b"fn ",
    b"func ",
    b"import ",
    b'"',
    b"'",
    b"/*",
    b"*/",
    b"#",
    b"--",
    b"<",
    b">",
    b"::",
    b"export ",
    b"pub ",
    b"@",
    b"",
]


@pytest.mark.parametrize(("source", "name"), SAMPLES, ids=[name for _, name in SAMPLES])
def test_random_edits_never_crash(source: str, name: str) -> None:
    language = language_for_path(name)
    assert language is not None
    rng = random.Random(name)
    data = source.encode()
    for _ in range(150):
        a = rng.randrange(len(data) + 1)
        b = min(len(data), a + rng.randrange(0, 30))
        if rng.random() < 0.3:
            insert = bytes(rng.randrange(256) for _ in range(rng.randrange(4)))
        else:
            insert = rng.choice(TOKENS)
        data = data[:a] + insert + data[b:]
        lang, raw = extract_source(data, language)
        symbols = to_file_symbols("/w/" + name, lang, raw)
        for d in symbols.definitions:
            assert 0 <= d.start_line <= d.signature_end_line <= d.end_line


def test_a_flood_of_unclosed_brackets_is_not_queried() -> None:
    """A long run of unclosed brackets parses fast to one ERROR node with a child per
    bracket, and tree-sitter's query cursor takes time quadratic in those (5 s for 100K,
    minutes for a 1 MB file, on every keystroke of the open file): no symbols instead."""
    import time

    from context.symbols import extract_source

    for language, head in (
        ("python", "def f(:\n"),
        ("javascript", "const x = "),
        ("c", "int x = "),
    ):
        source = (head + "[" * 100_000).encode()
        started = time.perf_counter()
        _, (defs, imports, _) = extract_source(source, language, references=False)
        assert time.perf_counter() - started < 2, language  # ~5 s each when queried
        assert (defs, imports) == ((), ())
