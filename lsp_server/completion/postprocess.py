"""Turn raw model output into the suggestion the editor shows.

The rules, in the order they apply:
1. single or multi-line by position (`choose_mode`): multi-line on a blank line or
   right after a block opener, single line elsewhere (setting `completion.multiline`);
2. generation stops early (`StopRule`) at the end of the first line in single-line mode,
   and in multi-line mode at a line that repeats the next non-blank line after the
   cursor (models love to copy the code that follows) or after `max_lines` lines;
3. `finish` trims trailing whitespace, drops a suggestion that only repeats text that
   is already there, and widens the replaced range over closing brackets after the
   cursor that the suggestion already contains.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from lsp_server.completion.document import CursorWindow

Mode = Literal["single", "multi"]

BLOCK_OPENERS = (":", "{", "(", "[", "=>", "->", " do", " then", "=")
CLOSERS = set(")]}>\"'`;,")
MAX_LINES = 16


def choose_mode(window: CursorWindow, setting: str = "auto") -> Mode:
    """Multi-line at a blank line or after a block opener, single line elsewhere."""
    if setting == "always":
        return "multi"
    if setting == "never":
        return "single"
    if window.line_suffix.strip() and not set(window.line_suffix.strip()) <= CLOSERS:
        return "single"  # code follows the cursor on this line: complete within it
    head = window.line_prefix.rstrip()
    if not head:
        return "multi"
    return "multi" if head.endswith(BLOCK_OPENERS) else "single"


def _same_line(a: str, b: str) -> bool:
    """Whole lines, indentation included: a nested `}` is not the function's `}`."""
    return bool(a.strip()) and a.rstrip() == b.rstrip()


@dataclass
class StopRule:
    """Decides, as text streams out of the model, where the suggestion ends.

    `check(text)` returns the length to keep once the suggestion is complete, or None
    while generation should go on.
    """

    mode: Mode
    next_line: str  # first non-blank line after the cursor's line
    max_lines: int = MAX_LINES

    def check(self, text: str) -> int | None:
        if self.mode == "single":
            stripped = text.lstrip("\n")
            newline = stripped.find("\n")
            if newline >= 0:
                return len(text) - len(stripped) + newline
            return None
        lines = text.split("\n")
        complete = lines[:-1]  # the last line may still be growing
        offset = 0
        for index, line in enumerate(complete):
            if index and _same_line(line, self.next_line):
                return max(0, offset - 1)
            offset += len(line) + 1
        if len(complete) >= self.max_lines:
            return offset - 1
        return None


@dataclass(frozen=True, slots=True)
class Suggestion:
    """What the editor shows: `text` replaces the cursor's line from `character` to `end_character`."""

    text: str
    line: int
    character: int  # code points
    end_character: int  # code points, on the same line; > character when closers are replaced


def finish(raw: str, window: CursorWindow, mode: Mode) -> Suggestion | None:
    """Clean `raw` model output; None when nothing useful is left."""
    text = raw.replace("\r\n", "\n")
    cut = StopRule(mode, window.next_nonempty_line, max_lines=1 << 30).check(text + "\n")
    if cut is not None:
        text = text[:cut]
    code_follows = bool(window.line_suffix.strip())
    if mode == "single":
        if text.startswith("\n") and code_follows:
            return None  # a new line, where code (or closers) follow on this one
        # One line; when the model starts a new line at the end of a finished
        # statement, the suggestion is that next line, newline kept.
        lead = "\n" if text.startswith("\n") and window.line_prefix.strip() else ""
        text = lead + text.lstrip("\n").split("\n", 1)[0]
    # Trailing whitespace on each line is noise that editors would show as ghost text,
    # except before code that follows on the line (`"hello ▮world"` + `big `).
    lines = [line.rstrip() for line in text.split("\n")]
    code_after = bool(set(window.line_suffix.strip()) - CLOSERS - {" "})  # not only closers
    if code_after and "\n" not in text:
        lines[-1] = text
    text = "\n".join(lines).rstrip("\n") if code_after else "\n".join(lines).rstrip()
    if not text.strip():
        return None
    replaced = _closers_replaced(text.split("\n", 1)[0], window.line_suffix, window.line_prefix)
    if not replaced and "\n" in text:  # a block whose last line closes what was open
        replaced = _closers_replaced(text, window.line_suffix, window.line_prefix)
    end = window.character + replaced
    text = _without_overlap(text, window.line_suffix[replaced:])
    if not text.strip() or _repeats_existing(text, window, end):
        return None
    return Suggestion(text=text, line=window.line, character=window.character, end_character=end)


def _without_overlap(text: str, rest: str) -> str:
    """`text` without an end that repeats the start of the code after it on the line
    (`foo(▮, b)` + `a, b)` is `a`): inserted, it would be there twice."""
    if "\n" in text or not rest.strip():
        return text
    for k in range(min(len(text), len(rest)), 1, -1):
        if text.endswith(rest[:k]) and rest[:k].strip() and not set(rest[:k].strip()) <= CLOSERS:
            return text[:-k]
    return text


_PAIRS = {")": "(", "]": "[", "}": "{", ">": "<"}
# Whether the cursor is inside a string needs a scan of its line from the start: on a
# line longer than this (a minified bundle, a JSON dump) it would cost more than the
# suggestion (0.15 s for 3 MB), so the cursor is then taken to be outside strings.
MAX_QUOTE_SCAN = 100_000
_QUOTES = "\"'`"


def _opens(text: str, i: int) -> bool:
    """Whether the quote at ``text[i]`` can open a string: a `'` after a letter or digit
    is an apostrophe (`don't`), after `&` a Rust lifetime (`&'a`)."""
    if text[i] != "'" or i == 0:
        return True
    before = text[i - 1]
    return not (before.isalnum() or before in "&_")


def _open_quote(prefix: str) -> str | None:
    """The quote of a string the line is inside at its end (None: outside any)."""
    quote = None
    escaped = False
    for i, ch in enumerate(prefix):
        if escaped:
            escaped = False
        elif quote is not None and ch == "\\":
            escaped = True
        elif quote is None and ch in _QUOTES and _opens(prefix, i):
            quote = ch
        elif ch == quote:
            quote = None
    return quote


def _outside_closers(text: str, quote: str | None) -> list[bool]:
    """For each character of `text` (typed where a string of `quote` is open, if any):
    whether it closes a bracket or string opened before `text`, not in it."""
    closes = [False] * len(text)
    stack: list[str] = []
    escaped = False
    own_quote = None  # a string opened in `text`
    for i, ch in enumerate(text):
        if escaped:
            escaped = False
            continue
        if quote is not None or own_quote is not None:
            if ch == "\\":
                escaped = True
            elif ch == own_quote:
                own_quote = None
            elif own_quote is None and ch == quote:
                closes[i], quote = True, None  # ends the string the cursor was in
            continue
        if ch in _QUOTES:
            if _opens(text, i):
                own_quote = ch
        elif ch in "([{<":
            stack.append(ch)
        elif ch in _PAIRS:
            if stack and stack[-1] == _PAIRS[ch]:
                stack.pop()
            else:
                closes[i] = True
    return closes


def _closers_replaced(first_line: str, tail: str, prefix: str = "") -> int:
    """How many characters after the cursor the suggestion replaces: the closing brackets
    and quotes (often auto-paired by the editor) that its first line already ends with,
    and only those it closes without opening them: `print(▮)` + `len(x)` keeps the `)`."""
    head = first_line.rstrip()
    # Only the run of closers and blanks that starts the tail can qualify: looking at
    # longer cuts of it cost time quadratic in the line (a 238 KB minified line froze the
    # engine thread for minutes).
    run = 0
    while run < len(tail) and (tail[run] in CLOSERS or tail[run].isspace()):
        run += 1
    if not run:
        return 0  # (most completions: no scan of the line and the suggestion)
    # On a huge line (minified code, data) the cursor is taken to be outside any string.
    quote = _open_quote(prefix) if len(prefix) <= MAX_QUOTE_SCAN else None
    closes = _outside_closers(head, quote)
    for k in range(run, 0, -1):
        core = tail[:k].strip()
        if core and set(core) <= CLOSERS | {" "} and head.endswith(core):
            start = len(head) - len(core)
            if all(closes[start + i] for i, ch in enumerate(core) if ch in _PAIRS or ch in _QUOTES):
                return len(tail[:k].rstrip())
    return 0


def _repeats_existing(text: str, window: CursorWindow, end: int) -> bool:
    """True when inserting `text` would only repeat what follows the cursor."""
    after = window.suffix[end - window.character :]
    if after.startswith(text):
        return True
    stripped_after = after.lstrip()
    if stripped_after.startswith(text.strip()):
        return True
    # A suggestion whose first line is the line right below the cursor.
    lines = text.split("\n")
    if lines[0].strip():
        first = window.line_prefix + lines[0]
    else:
        first = next((line for line in lines[1:] if line.strip()), "")
    return not window.line_suffix.strip() and _same_line(first, window.next_nonempty_line)
