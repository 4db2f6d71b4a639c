"""Lexical similarity: Jaccard windows and the BM25 baseline, incremental updates."""

from __future__ import annotations

import random

from context.similar import BM25Chunks, SimilarWindows, identifiers

HTTP = """
def fetch_json(session, url, timeout):
    response = session.get(url, timeout=timeout)
    response.raise_for_status()
    payload = response.json()
    return payload
"""
MATH = """
def mean(values):
    total = sum(values)
    count = len(values)
    return total / count
"""


def _filler(seed: int, n: int) -> str:
    rng = random.Random(seed)
    words = ["alpha", "beta", "gamma", "delta", "omega", "sigma", "kappa", "zeta"]
    return "\n".join(" ".join(rng.choice(words) for _ in range(5)) for _ in range(n))


def test_identifiers_skip_keywords_and_single_letters():
    assert identifiers("def f(self, value): return value.x + y_2") == ["value", "value", "y_2"]


def test_the_most_similar_window_wins_and_the_current_file_is_excluded():
    store = SimilarWindows(window_lines=10, step=5)
    store.update_file("/http.py", _filler(1, 30) + HTTP + _filler(2, 30))
    store.update_file("/math.py", MATH)
    store.update_file("/cur.py", HTTP)
    query = "response = session.get(url, timeout=timeout)\npayload = response.json()"
    hits = store.query(query, k=3, exclude_path="/cur.py")
    assert hits[0].path == "/http.py"
    assert hits[0].start_line <= 31 and hits[0].end_line >= 34
    assert all(hit.path != "/cur.py" for hit in hits)
    assert all(0 < hit.score <= 1 for hit in hits)


def test_overlapping_windows_of_a_file_are_not_both_returned():
    store = SimilarWindows(window_lines=10, step=2)
    store.update_file("/a.py", HTTP * 5)
    hits = store.query(HTTP, k=10)
    spans = sorted((h.start_line, h.end_line) for h in hits)
    for (_, end), (start, _) in zip(spans, spans[1:], strict=False):
        assert start > end


def test_update_replaces_a_files_windows_and_remove_forgets_it():
    store = SimilarWindows(window_lines=10, step=5)
    store.update_file("/a.py", HTTP)
    assert store.query("fetch_json session response payload", k=1)[0].path == "/a.py"
    store.update_file("/a.py", MATH)
    assert store.query("fetch_json session response payload", k=1) == []
    assert store.query("total count values mean", k=1)[0].path == "/a.py"
    store.remove_file("/a.py")
    assert store.query("total count values mean", k=1) == []
    assert len(store) == 0 and store.files() == []


def test_compaction_keeps_answers_identical():
    texts = {f"/f{i}.py": _filler(i, 200) + (HTTP if i % 7 == 0 else "") for i in range(40)}
    churned = SimilarWindows(window_lines=20, step=10)
    for _ in range(10):  # enough re-indexing to trigger compaction
        churned.update_many(list(texts), texts.get)
    assert churned._dead < 9 * len(churned)  # compacted on the way
    fresh = SimilarWindows(window_lines=20, step=10)
    for path, text in texts.items():
        fresh.update_file(path, text)
    assert len(churned) == len(fresh)
    for query in (HTTP, "alpha beta gamma", "sigma kappa zeta omega"):
        assert churned.query(query, k=5) == fresh.query(query, k=5)


def test_answers_are_deterministic_on_ties():
    store = SimilarWindows(window_lines=5, step=5)
    for name in ("/b.py", "/a.py", "/c.py"):
        store.update_file(name, MATH)
    first = store.query(MATH, k=3)
    assert first == store.query(MATH, k=3)
    assert [h.path for h in first] == ["/b.py", "/a.py", "/c.py"]  # insertion order


def test_bm25_ranks_rare_terms_higher():
    store = BM25Chunks(chunk_lines=10)
    store.update_file("/common.py", _filler(3, 100))
    store.update_file("/http.py", _filler(4, 20) + HTTP)
    hits = store.query("raise_for_status payload alpha", k=2)
    assert hits[0].path == "/http.py"
    assert hits[0].start_line % 10 == 0 and hits[0].end_line - hits[0].start_line <= 9
    assert store.query("raise_for_status", k=2, exclude_path="/http.py") == []


def test_updates_are_deferred_until_a_query_could_return_the_file():
    store = SimilarWindows(window_lines=10, step=5)
    store.update_many(["/a.py"], {"/a.py": MATH}.get)
    store.update_file("/a.py", HTTP)  # typing in a.py: cheap, nothing windowed yet
    assert store._pending == {"/a.py": HTTP}
    # A query from a.py itself excludes it and leaves the update pending.
    assert store.query(HTTP, k=1, exclude_path="/a.py") == []
    assert "/a.py" in store._pending
    # A query from elsewhere sees the new text.
    assert store.query("fetch_json session response payload", k=1)[0].path == "/a.py"
    assert store._pending == {}
    store.update_file("/b.py", MATH)
    store.remove_file("/b.py")
    assert store.files() == ["/a.py"]


def test_line_numbers_count_only_newlines():
    store = SimilarWindows(window_lines=2, step=2)
    store.update_many(["/a.py"], {"/a.py": "x_one\r\nx_two\x0cstill_two\nfetch_json payload\n"}.get)
    (hit,) = store.query("fetch_json payload", k=1)
    assert (hit.start_line, hit.end_line) == (2, 2)
