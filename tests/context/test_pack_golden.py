"""Packing's output, byte for byte, on a fixed set of candidates: rewrites of
context/pack.py for speed must not change what a prompt shows (text, segments, and
every piece's path, lines, text, reason, score, tokens and tier).

The digests were recorded with context/pack.py as of a753921 (before the third latency
round's changes); a change of what packing chooses or renders on purpose records them
again, saying so in its commit."""

from __future__ import annotations

import hashlib
import json
import random

import pytest

from context.pack import pack
from context.tokens import estimate_tokens
from context.types import PackedContext, Snippet

ROOTS = ["/ws"]


def _files(rng: random.Random) -> dict[str, list[str]]:
    files: dict[str, list[str]] = {}
    for k in range(9):
        lines: list[str] = []
        indent = ""
        for i in range(rng.randint(40, 160)):
            roll = rng.random()
            if roll < 0.08:
                lines.append(f"{indent}class Thing{k}_{i}:" if k % 2 else f"func f{k}_{i}() {{")
                indent = "    " if k % 2 else "\t"
            elif roll < 0.12:
                indent = ""
                lines.append("" if k % 2 else "}")
            elif roll < 0.14:
                lines.append(f"{indent}# <|file_sep|> a control token in a comment")
            else:
                lines.append(f"{indent}value_{i} = call_{rng.randrange(50)}(x{i % 7}, 'text')")
        files[f"/ws/pkg{k % 3}/file{k}.{'py' if k % 2 else 'go'}"] = lines
    return files


def _candidates(seed: int) -> list[Snippet]:
    rng = random.Random(seed)
    files = _files(rng)
    out: list[Snippet] = []
    paths = sorted(files)
    for n in range(rng.randint(40, 90)):
        path = rng.choice(paths)
        lines = files[path]
        start = rng.randrange(len(lines))
        end = min(len(lines) - 1, start + rng.choice([0, 2, 5, 11, 25, 40]))
        source = rng.choice(["definition", "definition", "recent", "current", "similar"])
        if source == "similar":
            score = round(rng.uniform(0, 19), 3)
        else:  # named definitions, members, and fill (< 36)
            score = round(rng.choice([100, 85, 70, 64, 60, 55, 50, 45, 33, 31]) - n * 0.01, 3)
        skeleton: tuple[Snippet, ...] = ()
        if end - start >= 5 and source != "similar" and rng.random() < 0.6:
            pieces = [(start, start + 1)] + ([(end, end)] if rng.random() < 0.5 else [])
            skeleton = tuple(
                Snippet(path, s, e, "\n".join(lines[s : e + 1]), "", 0.0, source=source)
                for s, e in pieces
            )
        out.append(
            Snippet(
                path,
                start,
                end,
                "\n".join(lines[start : end + 1]),
                f"reason {n}",
                score,
                source=source,
                skeleton=skeleton,
            )
        )
    return out


def _words(text: str) -> int:
    return len(text.split()) + text.count("\n\n")


def _digest(packed: PackedContext) -> str:
    record = [
        packed.text,
        packed.tokens,
        [list(s) for s in packed.segments],
        [
            [s.path, s.start_line, s.end_line, s.text, s.reason, s.score, s.tokens, s.source]
            for s in packed.snippets
        ],
    ]
    return hashlib.sha256(json.dumps(record).encode()).hexdigest()[:16]


CASES = {
    "est-fim-16k": (16384, estimate_tokens, "fim"),
    "est-fim-2k": (2048, estimate_tokens, "fim"),
    "est-chat-4k": (4096, estimate_tokens, "chat"),
    "words-chat-1k": (1024, _words, "chat"),
    "words-fim-3k": (3000, _words, "fim"),
}

EXPECTED: dict[str, list[str]] = {
    "est-chat-4k": [
        "99d683fbe76827d9",
        "9c7cbd7f0abc05be",
        "33a65ba9281080f9",
        "3863d073ecbe9ab6",
        "877bed9aca3fdeaa",
        "cf4f5d71d39b3760",
        "6a0b1f33f0f0c4ab",
        "df20d996208bfa6c",
        "1b102f28d1ab1022",
        "a63ce4bdbf9b8d71",
        "872d5cbcaf7d36f8",
        "6530220538c787e4",
    ],
    "est-fim-16k": [
        "5e645abd64a8b0b1",
        "994aced75e3dee54",
        "f108d47fbb91467c",
        "eb3f3477a91573e2",
        "dc49a29b37a29e89",
        "93e0cd968ca0577a",
        "724f66178a503625",
        "0428a29071de5482",
        "0890e7a24fa0b628",
        "18947569f515627e",
        "1dbef48c9aaa574b",
        "5e2caf4b821e2cd3",
    ],
    "est-fim-2k": [
        "75b35d501d9c34e3",
        "0303be5841db6240",
        "394c07b62fd1dd59",
        "aba7f44c9ceff4f6",
        "4668018e4365f51b",
        "1a9512dd50125d58",
        "fa2b0205419132ad",
        "6736fa703b22527d",
        "a9c49d69c478cd53",
        "0b70288fb6fad81f",
        "5476766ead25f907",
        "8140840b42bef377",
    ],
    "words-chat-1k": [
        "1971329a2cca3b8a",
        "5927693e496b84b1",
        "c552b48fe62ff19c",
        "920c593376b919b2",
        "0d408843430c4257",
        "3c54526b39633a31",
        "ae9ad8bcaf63a33b",
        "246db6d039bd6968",
        "3119b665d500deba",
        "28cc21b9c4f69c36",
        "03ba106a0ffc9bc7",
        "4f8cb2fcba1d265d",
    ],
    "words-fim-3k": [
        "1d5b41ac7bc4f52f",
        "63b829a3df305c5c",
        "a27c5a509f7c6eda",
        "348480ce536b273d",
        "e1b720b117fe535d",
        "b5bc3d1b1093d24a",
        "5dd4890ca1e8a902",
        "c1b232aa5158ab7a",
        "24261026125e1971",
        "220b170e7c0bb4ec",
        "d0f35f5053134c33",
        "05fb2ec85b78145d",
    ],
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_packing_output_is_unchanged(case: str) -> None:
    budget, count, fmt = CASES[case]
    got = [_digest(pack(_candidates(seed), budget, count, fmt, ROOTS)) for seed in range(12)]
    assert got == EXPECTED[case]
