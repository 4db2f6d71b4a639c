"""Post-processing rules: what the user sees of the model's raw output, and where it goes.

Documents are written with a cursor marker (▮); `apply` inserts a suggestion the way an
editor does (replacing `character..end_character` on the cursor's line), so the tests
assert the text the user ends up with.
"""

from __future__ import annotations

import pytest

from lsp_server.completion.document import CursorWindow, cursor_window
from lsp_server.completion.postprocess import (
    MAX_LINES,
    StopRule,
    Suggestion,
    choose_mode,
    finish,
)

CURSOR = "▮"


def at(source: str) -> tuple[str, CursorWindow]:
    """The document without the marker, and the window at the marker."""
    assert source.count(CURSOR) == 1
    before, after = source.split(CURSOR)
    line = before.count("\n")
    character = len(before) - (before.rfind("\n") + 1)
    text = before + after
    return text, cursor_window(text, line, character, prefix_lines=120, suffix_lines=40)


def apply(text: str, suggestion: Suggestion) -> str:
    """The document after the editor accepts `suggestion`."""
    lines = text.split("\n")
    current = lines[suggestion.line]
    lines[suggestion.line] = (
        current[: suggestion.character] + suggestion.text + current[suggestion.end_character :]
    )
    return "\n".join(lines)


def complete(source: str, raw: str, setting: str = "auto") -> tuple[str, Suggestion | None]:
    text, window = at(source)
    return text, finish(raw, window, choose_mode(window, setting))


# ---- choose_mode -------------------------------------------------------------------------


@pytest.mark.parametrize(
    "source",
    [
        "def total(xs):\n    ▮\n",  # an indented blank line
        "import os\n▮\n\nprint(os.sep)\n",  # an empty line
        "def total(xs):▮\n    pass\n",  # Python block opener
        "class Point:\n    def __init__(self, x):▮\n",
        "function add(a: number, b: number): number {▮\n}\n",  # TS brace
        "const double = (x: number) =>▮\n",  # TS arrow
        "const config = {▮\n",
        "func main() {▮\n}\n",  # Go
        "for i := 0; i < n; i++ {▮\n}\n",
        "items.each do▮\nend\n",  # Ruby
        "if ready then▮\nend\n",  # Lua
        "fn parse(s: &str) ->▮\n",  # Rust return type
        "result =▮\n",
        "print(▮)\n",  # only an auto-paired closer after the cursor
    ],
)
def test_multi_line_at_blank_lines_and_after_block_openers(source: str) -> None:
    _, window = at(source)
    assert choose_mode(window) == "multi"


@pytest.mark.parametrize(
    "source",
    [
        "def total(xs):\n    return sum▮\n",  # in the middle of a statement
        "def total(xs):\n    total = sum(xs)▮\n",  # a finished statement
        "const name = user.na▮me;\n",  # code follows the cursor on this line
        "x = compute(▮a, b)\n",
        'value = table["▮"]\n',  # only closers follow, but no block opener
        "fmt.Println(err)▮\n",
    ],
)
def test_single_line_inside_a_line(source: str) -> None:
    _, window = at(source)
    assert choose_mode(window) == "single"


def test_setting_always_and_never_override_the_position() -> None:
    _, blank = at("def f():\n    ▮\n")
    _, inside = at("x = compute(▮a, b)\n")
    assert choose_mode(inside, "always") == "multi"
    assert choose_mode(blank, "never") == "single"
    assert choose_mode(blank, "auto") == "multi"
    assert choose_mode(inside, "auto") == "single"


# ---- StopRule ----------------------------------------------------------------------------


def test_single_line_stops_at_the_end_of_the_first_line() -> None:
    rule = StopRule("single", next_line="")
    assert rule.check("total = sum(xs") is None  # still growing
    text = "total = sum(xs)\n    return total"
    keep = rule.check(text)
    assert keep is not None and text[:keep] == "total = sum(xs)"


def test_single_line_skips_leading_newlines_before_the_first_line() -> None:
    rule = StopRule("single", next_line="")
    assert rule.check("\n") is None
    assert rule.check("\n\nreturn x") is None
    text = "\nreturn x\nprint(x)"
    keep = rule.check(text)
    assert keep is not None and text[:keep] == "\nreturn x"


def test_multi_line_stops_at_a_line_repeating_the_next_line() -> None:
    rule = StopRule("multi", next_line="    return total")
    assert rule.check("    total = 0\n    for x in xs:\n") is None
    text = "    total = 0\n    for x in xs:\n        total += x\n    return total\n"
    keep = rule.check(text)
    assert keep is not None
    assert text[:keep] == "    total = 0\n    for x in xs:\n        total += x"


def test_multi_line_waits_until_the_repeated_line_is_complete() -> None:
    # "return total" might still become "return totals": only a finished line counts.
    rule = StopRule("multi", next_line="return total")
    assert rule.check("x = 1\nreturn total") is None
    assert rule.check("x = 1\nreturn total\n") == len("x = 1")


def test_multi_line_never_compares_the_first_line() -> None:
    # The first line continues the cursor's line; it is not a line of its own yet.
    rule = StopRule("multi", next_line="}")
    assert rule.check("}\n    x++\n") is None


def test_multi_line_stops_after_max_lines() -> None:
    rule = StopRule("multi", next_line="", max_lines=3)
    assert rule.check("a = 1\nb = 2\n") is None
    text = "a = 1\nb = 2\nc = 3\nd = 4"
    keep = rule.check(text)
    assert keep is not None and text[:keep] == "a = 1\nb = 2\nc = 3"
    assert StopRule("multi", next_line="").max_lines == MAX_LINES


def test_multi_line_with_no_next_line_does_not_stop_on_blank_lines() -> None:
    rule = StopRule("multi", next_line="")
    assert rule.check("def a():\n    pass\n\n\ndef b():\n") is None


# ---- finish: cut at the next line ---------------------------------------------------------


def test_cut_where_the_model_copies_the_next_line_python() -> None:
    source = "def total(xs):\n    ▮\n    return result\n"
    raw = "result = 0\n    for x in xs:\n        result += x\n    return result\n\ndef other():"
    text, suggestion = complete(source, raw)
    assert suggestion is not None
    assert suggestion.text == "result = 0\n    for x in xs:\n        result += x"
    assert apply(text, suggestion) == (
        "def total(xs):\n    result = 0\n    for x in xs:\n        result += x\n    return result\n"
    )


def test_cut_where_the_model_copies_the_next_line_typescript() -> None:
    source = (
        "export function sum(xs: number[]): number {\n  let total = 0;\n  ▮\n  return total;\n}\n"
    )
    raw = "for (const x of xs) total += x;\n  return total;\n}\n"
    _, suggestion = complete(source, raw)
    assert suggestion is not None
    assert suggestion.text == "for (const x of xs) total += x;"


def test_cut_where_the_model_copies_the_next_line_go() -> None:
    source = "func main() {\n\tname := os.Args[1]\n\t▮\n\tfmt.Println(greeting)\n}\n"
    raw = 'greeting := "hello, " + name\n\tfmt.Println(greeting)\n}'
    _, suggestion = complete(source, raw)
    assert suggestion is not None
    assert suggestion.text == 'greeting := "hello, " + name'


def test_a_nested_closing_brace_is_not_taken_for_the_next_line_go() -> None:
    source = "func load(path string) ([]byte, error) {\n\tdata, err := os.ReadFile(path)\n\t▮\n}\n"
    raw = "if err != nil {\n\t\treturn nil, err\n\t}\n\treturn data, nil"
    _, suggestion = complete(source, raw)
    assert suggestion is not None
    assert suggestion.text == raw  # the inner "\t}" closes the if, not the function


# ---- finish: no suggestion that repeats what is there --------------------------------------


def test_suggestion_equal_to_the_rest_of_the_line_is_dropped() -> None:
    _, suggestion = complete("const name = user.▮name;\n", "name;")
    assert suggestion is None


def test_suggestion_equal_to_the_next_line_is_dropped() -> None:
    source = "def total(xs):\n    result = sum(xs)\n    ▮\n    return result\n"
    assert complete(source, "return result")[1] is None
    assert complete(source, "    return result\n")[1] is None


def test_multi_line_suggestion_starting_with_the_next_line_is_dropped() -> None:
    source = "def total(xs):\n    result = sum(xs)\n▮\n    return result\n"
    _, suggestion = complete(source, "    return result\n\ndef average(xs):\n    pass")
    assert suggestion is None


def test_new_code_is_kept_even_if_similar_to_what_follows() -> None:
    source = "def total(xs):\n    result = sum(xs)\n    ▮\n    return result\n"
    _, suggestion = complete(source, "print(result)")
    assert suggestion is not None and suggestion.text == "print(result)"


# ---- finish: whitespace, modes, edge cases -------------------------------------------------


def test_trailing_whitespace_is_trimmed_on_every_line() -> None:
    source = "def f():▮\n"
    _, suggestion = complete(source, "\n    x = 1   \n    return x\t\n\n  \n")
    assert suggestion is not None
    assert suggestion.text == "\n    x = 1\n    return x"


@pytest.mark.parametrize("raw", ["", " ", "\n", "\n\n   \n", "\t\r\n"])
def test_empty_or_whitespace_output_gives_no_suggestion(raw: str) -> None:
    assert complete("def f():\n    ▮\n", raw)[1] is None
    assert complete("x = sum▮\n", raw)[1] is None


def test_single_line_mode_keeps_only_the_first_line() -> None:
    text, suggestion = complete("def f(xs):\n    return sum▮\n", "(xs)\n\nprint(f([1]))")
    assert suggestion is not None and suggestion.text == "(xs)"
    assert apply(text, suggestion) == "def f(xs):\n    return sum(xs)\n"


def test_multi_line_mode_keeps_several_lines() -> None:
    source = "class Stack:\n    def __init__(self):▮\n"
    _, suggestion = complete(source, "\n        self.items = []\n        self.size = 0")
    assert suggestion is not None
    assert suggestion.text == "\n        self.items = []\n        self.size = 0"


def test_never_setting_keeps_one_line_at_a_blank_line() -> None:
    _, suggestion = complete("def f():\n    ▮\n", "x = 1\n    return x", setting="never")
    assert suggestion is not None and suggestion.text == "x = 1"


def test_single_line_suggestion_starting_with_a_newline_is_not_glued_on() -> None:
    source = "def f(xs):\n    total = sum(xs)▮\n\nprint(f([1]))\n"
    text, window = at(source)
    assert choose_mode(window) == "single"
    suggestion = finish("\n    return total", window, "single")
    if suggestion is not None:  # either nothing, or the new line on a line of its own
        assert apply(text, suggestion).startswith(
            "def f(xs):\n    total = sum(xs)\n    return total\n"
        )


def test_crlf_output_and_document() -> None:
    source = "def total(xs):\r\n    ▮\r\n    return result\r\n"
    raw = "result = sum(xs)\r\n    return result\r\n"
    _, suggestion = complete(source, raw)
    assert suggestion is not None
    assert suggestion.text == "result = sum(xs)"
    assert "\r" not in suggestion.text


def test_unicode_positions_are_code_points() -> None:
    source = 'greeting = "😀 中文 ▮"\n'
    text, suggestion = complete(source, 'héllo"')
    assert suggestion is not None
    assert suggestion.character == len('greeting = "😀 中文 ')
    assert apply(text, suggestion) == 'greeting = "😀 中文 héllo"\n'


def test_suggestion_position_is_the_cursor() -> None:
    _, suggestion = complete("a = 1\nb = a +▮\n", " 2")
    assert suggestion == Suggestion(text=" 2", line=1, character=7, end_character=7)


# ---- finish: the replaced range -------------------------------------------------------------


def test_closing_bracket_already_in_the_suggestion_is_replaced_python() -> None:
    text, suggestion = complete("print(▮)\n", '"hi")')
    assert suggestion is not None
    assert (suggestion.character, suggestion.end_character) == (6, 7)
    assert apply(text, suggestion) == 'print("hi")\n'


def test_closing_bracket_already_in_the_suggestion_is_replaced_go() -> None:
    text, suggestion = complete("\tfmt.Println(▮)\n", '"done", n)')
    assert suggestion is not None
    assert apply(text, suggestion) == '\tfmt.Println("done", n)\n'


def test_several_closers_and_punctuation_are_replaced_typescript() -> None:
    text, suggestion = complete('const port = env["▮"];\n', 'PORT"];')
    assert suggestion is not None
    assert suggestion.end_character == suggestion.character + len('"];')
    assert apply(text, suggestion) == 'const port = env["PORT"];\n'


def test_closers_with_space_before_them_are_replaced() -> None:
    text, suggestion = complete("call(▮ )\n", "a, b)")
    assert suggestion is not None
    assert apply(text, suggestion) == "call(a, b)\n"


def test_closers_not_in_the_suggestion_stay() -> None:
    text, suggestion = complete("print(▮)\n", '"hi"')
    assert suggestion is not None
    assert suggestion.end_character == suggestion.character
    assert apply(text, suggestion) == 'print("hi")\n'


def test_code_after_the_cursor_is_never_replaced() -> None:
    text, suggestion = complete("total = add(▮, b)\n", "a")
    assert suggestion is not None
    assert suggestion.end_character == suggestion.character
    assert apply(text, suggestion) == "total = add(a, b)\n"


def test_the_closers_the_suggestion_contains_are_replaced_when_more_follow() -> None:
    text, suggestion = complete("value = outer(inner(▮))\n", "x)")
    assert suggestion is not None
    assert apply(text, suggestion) == "value = outer(inner(x))\n"


@pytest.mark.parametrize(
    ("line", "suggested", "result"),
    [
        ("print(▮)\n", "len(x)", "print(len(x))\n"),
        ("x = f(▮);\n", "g(a)", "x = f(g(a));\n"),
        ("let m: Array<▮>;\n", "Map<string, number>", "let m: Array<Map<string, number>>;\n"),
        ("v = t[▮]\n", "x[0]", "v = t[x[0]]\n"),
        ("d = {▮}\n", '"k": {}', 'd = {"k": {}}\n'),
        ("f(▮)\n", '"a", g()', 'f("a", g())\n'),
        ('s = "▮"\n', 'a ) b"', 's = "a ) b"\n'),  # a bracket inside the string
        ('s = f("▮")\n', 'it\\"s")', 's = f("it\\"s")\n'),  # an escaped quote
    ],
)
def test_closers_the_suggestion_balances_itself_stay(
    line: str, suggested: str, result: str
) -> None:
    """The user's closer is replaced only when the suggestion closes what it did not
    open: a balanced `len(x)` typed in `print(▮)` keeps the `)`."""
    text, suggestion = complete(line, suggested)
    assert suggestion is not None
    assert apply(text, suggestion) == result


def test_closer_replaced_by_a_multi_line_suggestion() -> None:
    text, window = at("print(▮)\n")
    assert choose_mode(window) == "multi"  # "(" opens a block
    suggestion = finish('"hi")\nprint("bye")', window, "multi")
    assert suggestion is not None
    assert apply(text, suggestion) == 'print("hi")\nprint("bye")\n'


def test_a_huge_line_after_the_cursor_costs_linear_time() -> None:
    """The closers a suggestion replaces are looked for in the run of closers that starts
    the rest of the line, not in every cut of it (quadratic: minutes on a minified file)."""
    import time

    from lsp_server.completion.postprocess import _closers_replaced

    assert _closers_replaced("f(x))", "))  ;rest") == 1  # its own `(` matches one
    assert _closers_replaced("f(x)", "]") == 0
    tail = ")" + "a" * 100_000  # ~26 s when quadratic, microseconds when not
    started = time.perf_counter()
    assert _closers_replaced("call(x))", tail) == 1
    assert time.perf_counter() - started < 2


def test_a_minified_line_replaces_closers_without_scanning_it() -> None:
    """Whether the cursor is in a string needs its whole line: on a line of megabytes
    that scan cost more than the suggestion, so the cursor is then taken to be outside
    strings, and an auto-paired closer is still not doubled."""
    import time

    from lsp_server.completion.postprocess import MAX_QUOTE_SCAN, _closers_replaced

    short = 'x = {"a": [1, 2'
    assert _closers_replaced("3]", "]}", short) == 1
    long = 'x = {"a": [' + '"s", ' * (MAX_QUOTE_SCAN // 5) + "1, 2"
    started = time.perf_counter()
    assert _closers_replaced("3]", "]}", long) == 1
    assert time.perf_counter() - started < 0.01
    text, suggestion = complete("var a=[" + "1," * MAX_QUOTE_SCAN + "];f(▮);\n", "x)")
    assert suggestion is not None and apply(text, suggestion).endswith("];f(x);\n")


def test_a_space_before_code_that_follows_is_kept() -> None:
    text, suggestion = complete('s = "hello ▮world"\n', "big ")
    assert suggestion is not None and apply(text, suggestion) == 's = "hello big world"\n'
    text, suggestion = complete("x = a▮b\n", " + ")
    assert suggestion is not None and apply(text, suggestion) == "x = a + b\n"


def test_a_new_line_is_not_glued_before_code_that_follows() -> None:
    _, suggestion = complete("call(x▮)\n", "\nfoo()")
    assert suggestion is None  # not `call(xfoo())`


def test_a_block_that_closes_the_bracket_on_its_last_line_replaces_it() -> None:
    text, suggestion = complete("foo(▮)\n", "\n    a,\n    b,\n)", "always")
    assert suggestion is not None
    assert apply(text, suggestion) == "foo(\n    a,\n    b,\n)\n"


def test_an_end_that_repeats_the_code_after_the_cursor_is_dropped() -> None:
    text, suggestion = complete("foo(▮, b)\n", "a, b)")
    assert suggestion is not None and apply(text, suggestion) == "foo(a, b)\n"


@pytest.mark.parametrize(
    ("line", "suggested", "result"),
    [
        ("fn f(x: &'a str, ▮)\n", "y: i32)", "fn f(x: &'a str, y: i32)\n"),  # a lifetime
        ("# don't call foo(▮)\n", "x)", "# don't call foo(x)\n"),  # an apostrophe
        ("print(▮)\n", "x ", "print(x)\n"),  # only closers follow: no trailing space
    ],
)
def test_apostrophes_lifetimes_and_closers_only(line: str, suggested: str, result: str) -> None:
    text, suggestion = complete(line, suggested)
    assert suggestion is not None and apply(text, suggestion) == result
