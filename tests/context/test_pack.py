"""Packing: the budget, overlaps, skeletons, order and the two block formats."""

from __future__ import annotations

import random

import pytest

from context.pack import pack, relative_path, render_block
from context.tokens import estimate_tokens
from context.types import Snippet

ROOT = "/ws"


def _file(n: int, prefix: str = "line") -> list[str]:
    return [f"{prefix} {i} " + "x" * (i % 7) for i in range(n)]


def _snip(
    path: str,
    lines: list[str],
    start: int,
    end: int,
    score: float,
    source: str = "definition",
    reason: str = "",
    skeleton: tuple[tuple[int, int], ...] = (),
) -> Snippet:
    return Snippet(
        path=path,
        start_line=start,
        end_line=end,
        text="\n".join(lines[start : end + 1]),
        reason=reason or f"{source} {start}-{end}",
        score=score,
        source=source,
        skeleton=tuple(Snippet(path, s, e, "\n".join(lines[s : e + 1]), "") for s, e in skeleton),
    )


def _random_snippets(rng: random.Random, files: dict[str, list[str]]) -> list[Snippet]:
    out = []
    for _ in range(rng.randint(1, 25)):
        path = rng.choice(sorted(files))
        lines = files[path]
        start = rng.randrange(len(lines))
        end = min(len(lines) - 1, start + rng.randint(0, 30))
        skeleton: tuple[tuple[int, int], ...] = ()
        if end - start > 3 and rng.random() < 0.5:
            skeleton = ((start, start + 1), (end, end))
        source = rng.choice(["definition", "recent", "current", "similar"])
        out.append(_snip(path, lines, start, end, rng.uniform(0, 100), source, skeleton=skeleton))
    return out


def _word_counter(text: str) -> int:
    """A tokenizer that is not additive: words, plus a token per line break run."""
    return len(text.split()) + text.count("\n\n") + (1 if text.endswith("\n") else 0)


def _superadditive(text: str) -> int:
    """Counts the whole as more than its parts, to exercise the final check."""
    return estimate_tokens(text) + len(text) // 400


@pytest.mark.parametrize("counter", [estimate_tokens, _word_counter, _superadditive])
@pytest.mark.parametrize("fmt", ["fim", "chat"])
def test_budget_is_never_exceeded(counter, fmt):
    rng = random.Random(1234)
    files = {f"{ROOT}/pkg/m{i}.py": _file(rng.randint(5, 120)) for i in range(6)}
    for _ in range(150):
        snippets = _random_snippets(rng, files)
        budget = rng.choice([0, 1, 5, 10, 20, 50, 100, 300, 1000, 4000, rng.randint(0, 3000)])
        packed = pack(snippets, budget, counter, fmt, ROOT)
        assert packed.tokens <= budget
        assert counter(packed.text) == packed.tokens or not packed.text
        assert packed.text == "".join(text for _, text in packed.segments)
        for piece in packed.snippets:
            assert piece.text in packed.text


def test_overlapping_snippets_of_a_file_are_shown_once():
    lines = _file(40)
    a = _snip(f"{ROOT}/a.py", lines, 5, 15, 50)
    b = _snip(f"{ROOT}/a.py", lines, 10, 20, 40)
    packed = pack([a, b], 10_000, estimate_tokens, "fim", ROOT)
    assert packed.text.count(lines[12] + "\n") == 1
    assert [(s.start_line, s.end_line) for s in packed.snippets] == [(5, 20)]
    assert packed.snippets[0].reason == "definition 5-15; definition 10-20"
    assert packed.text.count("<|file_sep|>") == 1


def test_a_file_in_two_tiers_shows_each_line_once():
    lines = _file(60)
    definition = _snip(f"{ROOT}/a.py", lines, 10, 20, 90)
    similar = _snip(f"{ROOT}/a.py", lines, 15, 40, 5, "similar")
    packed = pack([definition, similar], 10_000, estimate_tokens, "fim", ROOT)
    spans = [(s.source, s.start_line, s.end_line) for s in packed.snippets]
    assert spans == [("definition", 10, 20), ("similar", 21, 40)]
    assert packed.text.count(lines[18] + "\n") == 1


def test_gap_between_snippets_of_one_file_is_marked():
    lines = ["def a():", "    return 1", "", "", "def b():", "    return 2"]
    packed = pack(
        [_snip(f"{ROOT}/a.py", lines, 0, 1, 10), _snip(f"{ROOT}/a.py", lines, 4, 5, 9)],
        1000,
        estimate_tokens,
        "fim",
        ROOT,
    )
    assert packed.text == (
        "<|file_sep|>a.py\ndef a():\n    return 1\n...\ndef b():\n    return 2\n"
    )


def test_tight_budget_prefers_skeletons_to_bodies():
    body = (
        ["def big(x):", '    """Doc."""']
        + [f"    x = x + {i}" for i in range(40)]
        + ["    return x"]
    )
    other = ["def other(y):", '    """Other."""'] + [f"    y = y * {i}" for i in range(40)]
    big = _snip(f"{ROOT}/a.py", body, 0, len(body) - 1, 100, skeleton=((0, 1),))
    small = _snip(f"{ROOT}/b.py", other, 0, len(other) - 1, 90, skeleton=((0, 1),))
    whole_big = pack([big], 10_000, estimate_tokens, "fim", ROOT).tokens
    # Room for one body and a signature, not two bodies: both signatures go in first.
    alone = pack([big, small], whole_big, estimate_tokens, "fim", ROOT)
    assert "def other(y):" in alone.text and "x = x + 39" not in alone.text
    packed = pack([big, small], whole_big + 40, estimate_tokens, "fim", ROOT)
    assert "def big(x):" in packed.text and "def other(y):" in packed.text
    assert "x = x + 39" in packed.text  # the best one is upgraded with what is left...
    assert "y = y * 39" not in packed.text  # ...and the other stays a skeleton
    assert packed.text.index("def big") < packed.text.index("def other")
    assert "    ...\n" in packed.text  # the hidden body is marked, indented like a body
    # With room for everything, both are whole.
    roomy = pack([big, small], 100_000, estimate_tokens, "fim", ROOT)
    assert "y = y * 39" in roomy.text and "x = x + 39" in roomy.text


def test_order_is_by_tier_then_path_not_by_score():
    lines = _file(30)
    snippets = [
        _snip(f"{ROOT}/z.py", lines, 0, 2, 10, "similar"),
        _snip(f"{ROOT}/b.py", lines, 0, 2, 99, "definition"),
        _snip(f"{ROOT}/a.py", lines, 5, 7, 50, "definition"),
        _snip(f"{ROOT}/cur.py", lines, 0, 2, 60, "current"),
        _snip(f"{ROOT}/a.py", lines, 0, 2, 40, "recent"),
        _snip(f"{ROOT}/a.py", lines, 20, 22, 70, "definition"),
    ]
    packed = pack(snippets, 10_000, estimate_tokens, "fim", ROOT)
    order = [(s.source, s.path.rsplit("/", 1)[1], s.start_line) for s in packed.snippets]
    assert order == [
        ("definition", "a.py", 5),
        ("definition", "a.py", 20),
        ("definition", "b.py", 0),
        ("recent", "a.py", 0),
        ("current", "cur.py", 0),
        ("similar", "z.py", 0),
    ]
    assert [name for name, _ in packed.segments] == ["definition", "recent", "current", "similar"]


def test_same_choice_renders_the_same_bytes_whatever_the_input_order():
    rng = random.Random(7)
    files = {f"{ROOT}/m{i}.py": _file(80) for i in range(4)}
    for _ in range(30):
        snippets = _random_snippets(rng, files)
        budget = rng.randint(50, 3000)
        first = pack(snippets, budget, estimate_tokens, "fim", ROOT)
        shuffled = list(snippets)
        rng.shuffle(shuffled)
        assert pack(shuffled, budget, estimate_tokens, "fim", ROOT).text == first.text


def test_a_volatile_change_leaves_the_stable_prefix_byte_identical():
    lines = _file(50)
    stable = [
        _snip(f"{ROOT}/a.py", lines, 0, 10, 100),
        _snip(f"{ROOT}/b.py", lines, 5, 9, 60),
        _snip(f"{ROOT}/c.py", lines, 1, 3, 45, "recent"),
    ]
    before = pack(
        [*stable, _snip(f"{ROOT}/d.py", lines, 0, 20, 3, "similar")],
        10_000,
        estimate_tokens,
        "fim",
        ROOT,
    )
    after = pack(
        [*stable, _snip(f"{ROOT}/e.py", lines, 10, 30, 4, "similar")],
        10_000,
        estimate_tokens,
        "fim",
        ROOT,
    )
    head = "".join(text for name, text in before.segments if name != "similar")
    assert after.text.startswith(head) and before.text.startswith(head)
    assert before.text != after.text


def test_piece_tokens_add_up_to_the_blocks():
    lines = _file(50)
    snippets = [
        _snip(f"{ROOT}/a.py", lines, 0, 10, 100),
        _snip(f"{ROOT}/a.py", lines, 20, 25, 90),
        _snip(f"{ROOT}/b.py", lines, 5, 9, 60, "similar"),
    ]
    for fmt in ("fim", "chat"):
        packed = pack(snippets, 10_000, estimate_tokens, fmt, ROOT)
        parts = sum(s.tokens for s in packed.snippets)
        # Parts are counted separately (rounded up each), the whole once.
        assert packed.tokens <= parts <= packed.tokens + 2 * len(packed.text.splitlines())


def test_render_block_formats():
    snippet = Snippet(f"{ROOT}/pkg/a.py", 3, 4, "def f():\n    pass", "why", source="similar")
    assert render_block(snippet, ROOT, "fim") == "<|file_sep|>pkg/a.py\ndef f():\n    pass\n"
    assert render_block(snippet, ROOT, "chat") == (
        "# File: pkg/a.py (similar code)\ndef f():\n    pass\n\n"
    )


def test_chat_blocks_are_headed_and_separated():
    lines = _file(10)
    packed = pack(
        [
            _snip(f"{ROOT}/a.py", lines, 0, 1, 10),
            _snip(f"{ROOT}/b.py", lines, 0, 1, 10, "recent"),
        ],
        1000,
        estimate_tokens,
        "chat",
        ROOT,
    )
    assert packed.text == (
        f"# File: a.py (definitions)\n{lines[0]}\n{lines[1]}\n\n"
        f"# File: b.py (recently edited or viewed)\n{lines[0]}\n{lines[1]}\n\n"
    )


def test_relative_paths_use_the_longest_root():
    assert relative_path("/ws/sub/pkg/a.py", ["/ws", "/ws/sub"]) == "pkg/a.py"
    assert relative_path("/elsewhere/a.py", ["/ws"]) == "/elsewhere/a.py"
    assert relative_path("/ws2/a.py", "/ws") == "/ws2/a.py"


def test_empty_inputs():
    assert pack([], 100, estimate_tokens).tokens == 0
    lines = _file(3)
    assert pack([_snip("/ws/a.py", lines, 0, 1, 1)], 0, estimate_tokens).snippets == ()


def test_incremental_block_costs_match_full_recounts():
    """Packing re-costs only the stretch a candidate changes; it must equal a recount."""
    from context.pack import _Block, _FileLines, _Memo, _merge

    rng = random.Random(5)
    for _ in range(200):
        lines = _FileLines()
        n = rng.randint(5, 200)
        for i in range(n):
            text = rng.choice(["def f(x):", "    return x", "", "class A:", "    y = 1", "}"])
            lines.lines[i] = text + "  " * rng.randint(0, 2)
        block = _Block(3, lines, _Memo(estimate_tokens))
        for _ in range(rng.randint(1, 15)):
            start = rng.randrange(n)
            full = (start, min(n - 1, start + rng.randint(0, 12)))
            if rng.random() < 0.5 and full[1] > full[0] + 1:
                shown = [(full[0], full[0] + 1)]
                bodies = _merge([*block.bodies, full])
                lo, hi = min(shown[0][0], full[0] - 1), full[1]
            else:
                shown, bodies, lo, hi = [full], block.bodies, full[0], full[1]
            ranges = _merge([*block.ranges, *shown])
            expected = block.cost(ranges, bodies) - block.tokens
            assert block.delta(ranges, bodies, lo - 2, hi + 2) == expected
            block.ranges, block.bodies, block.tokens = ranges, bodies, block.tokens + expected


def test_lazy_file_lines_match_eager_split():
    """Snippets are cut into lines only where asked; a line shows the first snippet
    added that covers it, as if every text had been split up front."""
    from context.pack import _FileLines

    rng = random.Random(11)
    words = ["def f(x):", "\treturn x", "", "  y = 1", "}", "class A:"]
    for _ in range(300):
        lines = _FileLines()
        eager: dict[int, str] = {}
        tabs = False
        for _ in range(rng.randint(1, 8)):
            start = rng.randrange(30)
            parts = [
                rng.choice(words) + rng.choice(["", "1", "\r", "\r\r"])
                for _ in range(rng.randint(1, 10))
            ]
            text = "\n".join(parts) + rng.choice(["", "\n"])
            parts = text.split("\n")  # as packing split every text before
            if len(parts) > 1 and parts[-1] == "":
                parts.pop()
            snippet = Snippet("/ws/a.py", start, start + len(parts) - 1, text, "test")
            assert lines.add(snippet) == (start, start + len(parts) - 1)
            for offset, part in enumerate(parts):
                eager.setdefault(start + offset, part.rstrip("\r"))
                tabs = tabs or part.startswith("\t")
        assert lines.uses_tabs == tabs
        for _ in range(10):
            start = rng.randrange(45)
            end = start + rng.randrange(12)
            expected = "\n".join(eager.get(i, "") for i in range(start, end + 1)) + "\n"
            assert lines.piece(start, end) == expected
            assert lines.line(end) == eager.get(end, "")


def test_union_matches_merge():
    from context.pack import _merge, _union

    rng = random.Random(3)
    for _ in range(2000):
        merged = _merge(
            (a, a + rng.randrange(5)) for a in (rng.randrange(60) for _ in range(rng.randrange(8)))
        )
        extra = [
            (a, a + rng.randrange(6))
            for a in (rng.randrange(60) for _ in range(rng.randrange(1, 4)))
        ]
        assert _union(merged, extra) == _merge([*merged, *extra])


def test_file_lines_caches_follow_added_snippets():
    """Lines, pieces and their counts looked up before a snippet is added are not
    served stale after it: a line first shown empty takes the new snippet's text, a
    line already covered keeps the first snippet's."""
    from context.pack import _FileLines

    lines = _FileLines()
    lines.add(Snippet("/ws/a.py", 0, 1, "def f():\n    pass\n", "test"))
    assert lines.piece(0, 2) == "def f():\n    pass\n\n"
    assert lines.line(2) == ""
    assert lines.cost([(0, 2)], [], estimate_tokens) == estimate_tokens("def f():\n    pass\n\n")
    lines.add(Snippet("/ws/a.py", 1, 2, "    other\n\tg = 1\n", "test"))
    assert lines.line(2) == "\tg = 1"
    assert lines.piece(0, 2) == "def f():\n    pass\n\tg = 1\n"
    assert lines.cost([(0, 2)], [], estimate_tokens) == estimate_tokens(lines.piece(0, 2))
    assert lines.uses_tabs
