"""The names a file uses away from the cursor (`context.names.names_in_file`), read
once per line text and remembered, equal a fresh reading of the same lines."""

from __future__ import annotations

import random
import re

from context import names


def _reference(lines, line, near, chains, hash_comments):  # type: ignore[no-untyped-def]
    """names_in_file as it read every line with the regular expressions."""
    used: dict[str, int] = {}
    used_chains: dict[tuple[str, str], int] = {}
    for i in range(max(0, line - 600), min(len(lines) - 1, line + 200) + 1):
        if line - 20 <= i <= line + 3:
            continue
        text = lines[i]
        if len(text) > names.NEAR_CHARS or names.is_comment(text, hash_comments):
            continue
        distance = abs(line - i)
        for word in names._BARE.findall(text):
            if word not in near and (word not in used or distance < used[word]):
                used[word] = distance
        for chain in names._CHAIN.findall(text):
            parts = [p.strip() for p in re.split(r"\.|::", chain)]
            for k in range(len(parts) - 1, 0, -1):
                key = (".".join(parts[:k]), parts[k])
                if key not in chains and (key not in used_chains or distance < used_chains[key]):
                    used_chains[key] = distance
    return used, used_chains


def test_remembered_lines_give_the_same_names_as_a_fresh_reading() -> None:
    rng = random.Random(5)
    pool = [
        "x = pkg.sub.call(a, b)  # pkg.other",
        "    # only.a.comment(here)",
        "// a C comment line",
        "#include <stdio.h>",
        "let v = crate::util::say(&w) + Other::new();",
        "return self.name.upper()",
        "",
        "y" * (names.NEAR_CHARS + 1) + " = long.line",
        "for item in items: total += item.value",
    ]
    lines = [rng.choice(pool) for _ in range(400)]
    lines[100:110] = ["z = far.away.thing(1)"] * 10  # chains used only far from the cursor
    for hash_comments in (True, False):
        for cursor in (0, 150, 399):
            near, chains = names.names_near(lines, cursor, 0, hash_comments)
            names.line_uses.cache_clear()
            want = _reference(lines, cursor, near, chains, hash_comments)
            for _ in range(2):  # read afresh, then remembered
                got = names.names_in_file(lines, cursor, near, chains, hash_comments)
                assert got == want
                assert list(got[0]) == list(want[0]) and list(got[1]) == list(want[1])
            assert ("far.away", "thing") in want[1]
    # A comment line counts as code where `#` starts no comment (C), and not elsewhere.
    assert names.line_uses("#include <stdio.h>", False) is not None
    assert names.line_uses("#include <stdio.h>", True) is None
    assert names.line_uses("y" * (names.NEAR_CHARS + 1), False) is None
