"""The names the code around the cursor uses: bare identifiers and `a.b` / `a::b` chains
near the cursor (the 20 lines above and 3 below, without the word being typed) and
elsewhere in the file, each with the line distance of its nearest use. Lines that are
only a comment name nothing (docs/context.md, "Sources and scores").
"""

from __future__ import annotations

import functools
import re

NEAR_BEFORE = 20  # lines above the cursor whose names count as "near"
NEAR_AFTER = 3
# Of a long line (minified code, a JSON dump), only this many characters around the
# cursor's column count as near: a regex over a 3 MB line took 0.2 s per keystroke.
NEAR_CHARS = 2000
# Names used elsewhere in this file are looked for this far from the cursor (a bound on
# the work per keystroke in a long file); the nearest use orders them.
FILE_SCAN_BEFORE = 600
FILE_SCAN_AFTER = 200

# An identifier not reached through `.`, `::` or `->`: a name the scope resolves, not an
# attribute of some object whose type retrieval cannot know.
_BARE = re.compile(r"(?<![\w$.])(?<!::)(?<!->)(?<!\.\s)[A-Za-z_$][\w$]*")
_CHAIN = re.compile(r"[A-Za-z_$][\w$]*(?:\s*(?:\.|::)\s*[A-Za-z_$][\w$]*)+")


def names_near(
    lines: list[str], line: int, character: int, hash_comments: bool
) -> tuple[dict[str, int], dict[tuple[str, str], int]]:
    """Bare identifiers and `a.b` chains near the cursor, with their line distance."""
    lo = max(0, line - NEAR_BEFORE)
    hi = min(len(lines) - 1, line + NEAR_AFTER)
    near: dict[str, int] = {}
    chains: dict[tuple[str, str], int] = {}
    for i in range(lo, hi + 1):
        text = lines[i]
        if i == line:
            text = without_word_at(text, character)
        if len(text) > NEAR_CHARS:
            text = near_part(text, character)
        if is_comment(text, hash_comments):
            continue  # prose (a doc comment's example) names nothing the code uses
        distance = abs(line - i)
        for word in _BARE.findall(text):
            if word not in near or distance < near[word]:
                near[word] = distance
        for chain in _CHAIN.findall(text):
            parts = [p.strip() for p in re.split(r"\.|::", chain)]
            # `a.b.c.d`: try every split, `a.b.c` + `d` down to `a` + `b`.
            for k in range(len(parts) - 1, 0, -1):
                key = (".".join(parts[:k]), parts[k])
                if key not in chains or distance < chains[key]:
                    chains[key] = distance
    return near, chains


def names_in_file(
    lines: list[str],
    line: int,
    near: dict[str, int],
    chains: dict[tuple[str, str], int],
    hash_comments: bool,
) -> tuple[dict[str, int], dict[tuple[str, str], int]]:
    """Bare names and `a.b` chains used in the file away from the cursor (within
    `FILE_SCAN_BEFORE` lines above and `FILE_SCAN_AFTER` below), with the line
    distance of their nearest use; the near ones are left out."""
    used: dict[str, int] = {}
    used_chains: dict[tuple[str, str], int] = {}
    lo = max(0, line - FILE_SCAN_BEFORE)
    hi = min(len(lines) - 1, line + FILE_SCAN_AFTER)
    near_lo, near_hi = line - NEAR_BEFORE, line + NEAR_AFTER
    for i in range(lo, hi + 1):
        if near_lo <= i <= near_hi:
            continue
        uses = line_uses(lines[i], hash_comments)
        if uses is None:
            continue  # minified code or prose: not a use that predicts the next one
        distance = abs(line - i)
        words, keys = uses
        for word in words:
            if word not in near and (word not in used or distance < used[word]):
                used[word] = distance
        for key in keys:
            if key in chains:
                continue
            if key not in used_chains or distance < used_chains[key]:
                used_chains[key] = distance
    return used, used_chains


# What a line of code names, by its text: the lines away from the cursor are the same
# from one keystroke to the next (and in every request in the file), so each is read
# with the regular expressions once. Bounded; the least recently read are forgotten.
_LINE_USES_SIZE = 32768
_SPLIT_CHAIN = re.compile(r"\.|::")


@functools.lru_cache(maxsize=_LINE_USES_SIZE)
def line_uses(
    text: str, hash_comments: bool
) -> tuple[tuple[str, ...], tuple[tuple[str, str], ...]] | None:
    """The bare names and the `a.b` chain keys (every split, longest head first) of one
    line, each once, in order of first use; None for a comment line or a line over
    `NEAR_CHARS` characters (names_in_file skips those)."""
    if len(text) > NEAR_CHARS or is_comment(text, hash_comments):
        return None
    words = tuple(dict.fromkeys(_BARE.findall(text)))
    keys: dict[tuple[str, str], None] = {}
    if "." in text or "::" in text:
        for chain in _CHAIN.findall(text):
            parts = [p.strip() for p in _SPLIT_CHAIN.split(chain)]
            for k in range(len(parts) - 1, 0, -1):
                keys[(".".join(parts[:k]), parts[k])] = None
    return words, tuple(keys)


# A line that is only comment: `//`, `/* */`, a doc comment's ` * ` lines, `#` outside
# C and C++ (where it starts a directive) and Lua's `--`.
_COMMENT_LINE = re.compile(r"\s*(?://|/\*|\*/|\*\s|\*$|--\s|#)")


def is_comment(text: str, hash_comments: bool) -> bool:
    match = _COMMENT_LINE.match(text)
    if match is None:
        return False
    if match.group(0).endswith("#"):
        return hash_comments
    return True


# Where a cut of a long line may start or end: never inside a name or a `a.b` chain.
_CUT = re.compile(r"[\s;,(){}\[\]]")
_LAST_CUT = re.compile(r".*[\s;,(){}\[\]]", re.S)


def near_part(text: str, character: int) -> str:
    """The part of a long line that counts as near ``character``: about ``NEAR_CHARS``
    before it and a quarter of that after, with ends that move in steps of a quarter
    (typing does not shift them at each keystroke) and fall between tokens."""
    step = NEAR_CHARS // 4
    start = max(0, (character - NEAR_CHARS) // step * step)
    end = min(len(text), (character // step + 2) * step)
    if start:
        cut = _CUT.search(text, start, end)
        start = cut.end() if cut else end
    if end < len(text):
        last = _LAST_CUT.match(text, start, end)
        end = last.end() - 1 if last else start
    return text[start:end]


def without_word_at(text: str, character: int) -> str:
    """`text` without the identifier that touches `character` (the one being typed)."""
    character = max(0, min(character, len(text)))
    start = character
    while start > 0 and (text[start - 1].isalnum() or text[start - 1] in "_$"):
        start -= 1
    end = character
    while end < len(text) and (text[end].isalnum() or text[end] in "_$"):
        end += 1
    if start == end:
        return text
    return text[:start] + " " + text[end:]
