"""Token counting: the documented estimate and the cache around real tokenizers."""

from __future__ import annotations

import threading

from context.tokens import CachedTokenCounter, estimate_tokens, llama_token_counter


def test_estimate_is_bytes_over_3_2_rounded_up():
    assert estimate_tokens("") == 0
    assert estimate_tokens("a") == 1
    assert estimate_tokens("abcd") == 2  # 4 / 3.2 = 1.25
    assert estimate_tokens("x" * 32) == 10
    assert estimate_tokens("é" * 16) == 10  # 32 UTF-8 bytes


def test_estimate_of_a_whole_never_exceeds_its_parts():
    parts = ["def f():\n", "    return 1\n", "é\n", "x" * 17]
    assert estimate_tokens("".join(parts)) <= sum(estimate_tokens(p) for p in parts)


def test_cache_counts_each_text_once_and_stays_bounded():
    calls: list[str] = []

    def slow(text: str) -> int:
        calls.append(text)
        return len(text)

    counter = CachedTokenCounter(slow, max_chars=100)
    assert counter("hello") == 5 and counter("hello") == 5
    assert calls == ["hello"] and counter.hits == 1 and counter.misses == 1
    for i in range(50):
        counter(f"text number {i}")
    assert sum(len(k) + 1 for k in counter._cache) <= 100
    counter("x" * 1000)  # larger than the cache: counted, not kept
    assert "x" * 1000 not in counter._cache
    counter.clear()
    counter("hello")
    assert calls.count("hello") == 2


def test_cache_is_thread_safe():
    counter = CachedTokenCounter(len, max_chars=1000)
    errors: list[BaseException] = []

    def worker() -> None:
        try:
            for i in range(3000):
                assert counter(f"t{i % 97}") == len(f"t{i % 97}")
        except BaseException as exc:  # pragma: no cover
            errors.append(exc)

    threads = [threading.Thread(target=worker) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors


def test_llama_counter_tokenizes_without_bos_and_specials():
    seen = {}

    class FakeLlama:
        def tokenize(self, data: bytes, add_bos: bool, special: bool) -> list[int]:
            seen.update(add_bos=add_bos, special=special)
            return list(data)

    assert llama_token_counter(FakeLlama())("abc") == 3
    assert seen == {"add_bos": False, "special": False}
