"""The folder's name counts of the fill (`context.fill.folder_popularity`), kept per
folder and brought up to date file by file, equal the counts taken afresh."""

from __future__ import annotations

import random
from collections import Counter

from context import fill
from context.types import FileSymbols


def _fresh(others: list[FileSymbols]) -> dict[str, int]:
    counts: Counter[str] = Counter()
    for other in others:
        counts.update(other.references)
    return dict(counts)


def test_moving_between_files_of_a_folder_keeps_exact_counts() -> None:
    rng = random.Random(3)
    words = [f"name{i}" for i in range(40)]
    folder = [
        FileSymbols(f"/w/pkg/f{i}.go", "go", references=frozenset(rng.sample(words, 8)))
        for i in range(12)
    ]
    fill._POPULAR_CACHE.clear()
    for step in range(60):
        current = rng.randrange(len(folder))
        if step % 7 == 3:  # a neighbour edited: new symbols for one file
            k = rng.randrange(len(folder))
            folder[k] = FileSymbols(
                folder[k].path, "go", references=frozenset(rng.sample(words, 5))
            )
        # The first files but the current one (retrieval takes at most so many).
        others = [f for i, f in enumerate(folder) if i != current][: 6 + step % 6]
        got = fill.folder_popularity(folder[current].path, others, frozenset())
        assert got.neighbours == _fresh(others), step
    assert len(fill._POPULAR_CACHE) == 1  # one folder, one entry
