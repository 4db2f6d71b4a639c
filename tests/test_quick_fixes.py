"""Quick fixes that can be trusted: on broken files of every parsed language, only a
model answer that really fixes the error is applied, and only to its region.

The answers are injected through the engine's API (``ScriptedEngine``: an ``Engine``
whose ``run`` returns a given text, cut by the same stop rules as a model's), so the
whole ``Rewriter.run`` path runs: prompt, engine, checks, edit. The tiny real models run
the same path end to end in ``test_code_actions.py`` and below.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import pytest

from context.languages import language_for_path
from context.symbols import file_symbols
from lsp_server.actions.diagnostics import SyntaxTrees, syntax_problems
from lsp_server.actions.plan import ActionPlan, Diagnostic, plan_actions
from lsp_server.actions.rewrite import Rewriter, RewriteRequest, RewriteResult
from lsp_server.engine.types import (
    NEVER,
    CancelToken,
    Figures,
    Generation,
    ModelInfo,
    Prompt,
    text_end,
)
from lsp_server.settings import Settings


class ScriptedEngine:
    """An ``Engine`` that answers every prompt with a given text (the test seam)."""

    def __init__(self, answer: str = "") -> None:
        self.answer = answer
        self.prompts: list[Prompt] = []
        self.info = ModelInfo(
            path="scripted",
            architecture="scripted",
            name="scripted",
            n_ctx_train=32768,
            n_ctx=32768,
            n_vocab=256,
            hybrid=False,
            has_fim_tokens=False,
            fim_trained=False,
            chat_template=None,
            bos="",
            eos="",
            gpu_offload=False,
            size_bytes=0,
        )

    @property
    def n_ctx(self) -> int:
        return self.info.n_ctx

    def count_tokens(self, text: str) -> int:
        return len(text) // 3 + 1

    def run(
        self,
        prompt: Prompt,
        *,
        max_tokens: int,
        rule: Callable[[str], int | None] | None = None,
        cancel: CancelToken = NEVER,
    ) -> Generation:
        self.prompts.append(prompt)
        ended = text_end(self.answer, prompt.stop, rule)
        text, reason = ended if ended is not None else (self.answer, "eos")
        return Generation(text, [], reason, Figures(generated_tokens=len(text)))

    def warm(self, prompt: Prompt, cancel: CancelToken = NEVER) -> Figures:
        return Figures()

    def model_file_changed(self) -> bool:
        return False

    def describe(self) -> dict[str, Any]:
        return {}

    def close(self) -> None:
        pass


@dataclass(frozen=True)
class Broken:
    """A broken file, its error, and model answers for its region: one correct fix,
    one that changes a different place, one that fixes it but rewrites unrelated lines.
    ``region`` and ``message`` are what the plan and our diagnostic must say."""

    path: str
    text: str
    line: int
    message: str
    region: tuple[int, int]
    fixed: str
    elsewhere: str
    unrelated: str


PROBE = "def area(w, h):\n    return (w * h\n\n\ndef double(x):\n    return x * 2\n"

BROKEN = [
    # The file of the issue: before, a fix replaced all of it with control characters.
    Broken(
        "probe.py",
        PROBE,
        1,
        "`(` was never closed",
        (1, 1),
        "    return (w * h)",
        "    return (w * h * 1",
        "def area(width, h):\n    return (w * h)",
    ),
    Broken(
        "colon.py",
        "def total(items)\n    s = 0\n    for i in items:\n        s += i\n    return s\n\n\n"
        "print(total([1, 2]))\n",
        0,
        "expected `:`",
        (0, 4),
        "def total(items):\n    s = 0\n    for i in items:\n        s += i\n    return s",
        "def total(items)\n    s = 1\n    for i in items:\n        s += i\n    return s",
        "def total(items):\n    s = 0.0\n    for i in items:\n        s += i\n    return s",
    ),
    Broken(
        "indent.py",
        "import os\n\nx = 1\n    y = 2\nz = 3\n",
        3,
        "unexpected indent",
        (2, 3),
        "x = 1\ny = 2",
        "x = 2\n    y = 2",
        "x = 10\ny = 2",
    ),
    Broken(
        "half.py",
        "class Vec:\n    def scale(self, k):\n        result = self.v *\n        return result\n\n"
        "    def norm(self):\n        return abs(self.v)\n",
        2,
        "incomplete code after `*`",
        (2, 2),
        "        result = self.v * k",
        "        result = self.w *",
        "        result = self.v * k\n        result = abs(result)\n        result += 0\n"
        "        result -= 0\n        print(result)",
    ),
    Broken(
        "paren.js",
        "function add(a, b) {\n  return a + (b;\n}\n\nfunction sub(a, b) {\n  return a - b;\n}\n",
        1,
        "`(` was never closed",
        (1, 1),
        "  return a + (b);",
        "  return a - (b;",
        "  return a + (b);\n}\n\nfunction sub(a, b) {\n  return b - a;",
    ),
    Broken(
        "brace.ts",
        "function clamp(a: number): number {\n  if (a > 0) {\n    return a;\n  return 0;\n}\n\n"
        "export const one = clamp(1);\n",
        0,
        "`{` was never closed",
        (0, 4),
        "function clamp(a: number): number {\n  if (a > 0) {\n    return a;\n  }\n  return 0;\n}",
        "function clamp(a: number): number {\n  if (a > 1) {\n    return a;\n  return 0;\n}",
        "function clamp(a: number): number {\n  if (a > 0) {\n    return a;\n  }\n  return 0;\n}\n"
        "\nexport const one = clamp(2);",
    ),
    Broken(
        "brace.go",
        "package main\n\nfunc f() int {\n\treturn 1\n\nfunc g() int {\n\treturn 2\n}\n",
        2,
        "`{` was never closed",
        (2, 3),
        "func f() int {\n\treturn 1\n}",
        "func f() int {\n\treturn 3",
        "func f() int {\n\treturn 1\n}\n\nfunc g() int {\n\treturn 5\n}",
    ),
    Broken(
        "semi.rs",
        'fn main() {\n    let x = 1\n    println!("{}", x);\n}\n',
        1,
        "missing `;`",
        (1, 1),
        "    let x = 1;",
        "    let y = 1",
        '    let x = 1;\n    println!("{}", x + 1);',
    ),
    Broken(
        "Semi.java",
        "class Counter {\n  int n;\n\n  void add() {\n    n = n + 1\n  }\n}\n",
        4,
        "missing `;`",
        (4, 4),
        "    n = n + 1;",
        "    n = n + 2",
        "    n = n + 1;\n  }\n\n  void sub() {\n    n = n - 1;",
    ),
    Broken(
        "paren.c",
        '#include <stdio.h>\n\nint main(void) {\n  printf("hi\\n"\n  return 0;\n}\n',
        3,
        "`(` was never closed",
        (3, 3),
        '  printf("hi\\n");',
        '  puts("hi\\n"',
        '  printf("hi\\n");\n  return 1;',
    ),
    Broken(
        "init.cpp",
        "#include <vector>\n\nint sum() {\n  std::vector<int> v = {1, 2;\n  int s = 0;\n"
        "  for (int x : v) s += x;\n  return s;\n}\n",
        3,
        "`{` was never closed",
        (3, 3),
        "  std::vector<int> v = {1, 2};",
        "  std::vector<long> v = {1, 2;",
        "  std::vector<int> v = {1, 2};\n  int s = 1;",
    ),
    Broken(
        "stray.lua",
        "local function f()\n  return 1\nend\nend\n\nreturn f\n",
        3,
        "unexpected `end`",
        (3, 3),
        "",
        "end end",
        "end\n\nreturn f()",
    ),
    Broken(
        "if.lua",
        "local function g(x)\n  if x then\n    return 1\n  return 2\nend\n\nreturn g\n",
        1,
        "`if` was never closed (missing `end`)",
        (1, 2),
        "  if x then\n    return 1\n  end",
        "  if y then\n    return 1",
        "  if x then\n    return 1\n  end\n  return 3",
    ),
]

GARBAGE = [
    "," + "\x1f\x07" * 100,  # what the tiny model wrote in the issue's probe
    "\x00\x01\x02 return",
    "Here is the fixed code:\n```lua\nend\n```",
    "I have fixed the unclosed bracket for you here:",
    "}}}}}}}}))))",
    "x" * 5000,
]


def plan_of(case: Broken) -> ActionPlan:
    """The fix offered for the case's own diagnostic, as the server plans it."""
    language = language_for_path(case.path)
    assert language is not None
    parsed = SyntaxTrees().view(case.path, case.text, language)
    assert parsed is not None
    problem = parsed.problems[0]
    diagnostic = Diagnostic(
        problem.message,
        problem.line,
        problem.end_line,
        "qwen-lsp",
        problem.column,
        problem.end_column,
    )
    definitions = file_symbols(f"/w/{case.path}", case.text.encode(), language).definitions
    plans = plan_actions(
        case.text, language, problem.line, problem.line, [diagnostic], definitions, parsed=parsed
    )
    assert plans and plans[0].task == "fix" and plans[0].syntax
    return plans[0]


def run(case: Broken, plan: ActionPlan, answer: str) -> RewriteResult:
    engine = ScriptedEngine(answer + "\n```\n")  # the model closes the fence it is in
    settings = Settings()
    settings.context.enabled = False
    rewriter = Rewriter(engine, settings)
    result = rewriter.run(RewriteRequest(plan, f"/w/{case.path}", case.path, case.text))
    assert len(engine.prompts) == 1
    return result


def errors(text: str, path: str) -> int:
    language = language_for_path(path)
    assert language is not None
    return len(syntax_problems(text, language))


def in_region(result: RewriteResult, plan: ActionPlan) -> bool:
    """Whether the edit stays inside the planned lines."""
    return plan.start_line <= result.start_line <= result.end_line <= plan.end_line + 1


IDS = [case.path for case in BROKEN]


@pytest.mark.parametrize("case", BROKEN, ids=IDS)
def test_our_diagnostic_says_where_and_what(case: Broken) -> None:
    language = language_for_path(case.path)
    assert language is not None
    (problem,) = syntax_problems(case.text, language)
    assert (problem.line, problem.message) == (case.line, case.message)
    # A precise range: on the line, within its text.
    line = case.text.split("\n")[problem.line]
    assert 0 <= problem.column <= problem.end_column <= len(line)
    assert (
        syntax_problems(
            case.text.replace(
                "\n".join(case.text.split("\n")[case.region[0] : case.region[1] + 1]), case.fixed, 1
            ),
            language,
        )
        == []
    )


@pytest.mark.parametrize("case", BROKEN, ids=IDS)
def test_the_fix_region_is_the_smallest_block_that_parses(case: Broken) -> None:
    plan = plan_of(case)
    assert (plan.start_line, plan.end_line) == case.region
    assert plan.end_line - plan.start_line < case.text.count("\n") - 1  # never the file


@pytest.mark.parametrize("case", BROKEN, ids=IDS)
def test_only_the_correct_fix_is_applied_and_only_to_its_region(case: Broken) -> None:
    plan = plan_of(case)
    region = "\n".join(case.text.split("\n")[plan.start_line : plan.end_line + 1])
    refused = {
        "repeats the input": region,
        "fixes a different place": case.elsewhere,
        "fixes it and rewrites unrelated lines": case.unrelated,
        **{f"garbage {i}": answer for i, answer in enumerate(GARBAGE)},
    }
    for what, answer in refused.items():
        result = run(case, plan, answer)
        assert result.new_text is None, (what, result.message)
        assert result.message.endswith(("nothing was changed", "no change")), result.message
    result = run(case, plan, case.fixed)
    assert result.new_text is not None, result.message
    assert in_region(result, plan)
    after = result.apply(case.text)
    assert errors(after, case.path) == 0
    # The edit is the lines that changed, nothing more.
    old = case.text.split("\n")
    new = after.split("\n")
    assert old[: result.start_line] == new[: result.start_line]
    kept = len(old) - result.end_line
    assert old[len(old) - kept :] == new[len(new) - kept :]
    if result.count and result.end_line > result.start_line:
        changed = result.new_text.split("\n")
        assert changed[0] != old[result.start_line] or changed[-1] != old[result.end_line - 1]


def test_the_issues_probe_gets_a_one_line_fix_or_nothing() -> None:
    """The answer of the issue (a comma and control characters) is refused; the region is
    the broken `return` line, not the file."""
    case = BROKEN[0]
    plan = plan_of(case)
    assert (plan.start_line, plan.end_line) == (1, 1)
    result = run(case, plan, "," + "\x1f\x07" * 100)
    assert result.new_text is None and "control characters" in result.message
    result = run(case, plan, "    return (w * h)")
    assert (result.start_line, result.end_line, result.new_text) == (1, 2, "    return (w * h)")


@pytest.mark.parametrize(
    ("answer", "rule"),
    [
        ("    return (w\x0b * h)", "control characters"),
        ("    return (w * h)\n```\n", None),  # the closing fence ends the answer: fine
        ("\t\treturn (w * h)", "indents with tabs"),
        ("    return (w * h) + 0 + 0 + 0" + " + 0" * 100, "much longer"),
        ("Sure, here is the corrected line of code:\n    return (w * h)", "prose"),
        # What the tiny qwen2 model answered for the probe: it parses, it fixes nothing.
        ("    ectionur", "replaces the code instead of fixing it"),
    ],
)
def test_each_refusal_names_its_rule(answer: str, rule: str | None) -> None:
    case = BROKEN[0]
    result = run(case, plan_of(case), answer)
    if rule is None:
        assert result.new_text == "    return (w * h)"
    else:
        assert result.new_text is None and rule in result.message, result.message


def test_a_fix_of_another_servers_diagnostic_must_change_its_text() -> None:
    text = "def f(radius):\n    area = 3.14 * radius * radius\n    return 2 * 3.14 * radus\n"
    definitions = file_symbols("/w/f.py", text.encode(), "python").definitions
    diagnostic = Diagnostic('"radus" is not defined', 2, 2, "Pyright", 22, 27)
    (plan,) = plan_actions(text, "python", 2, 2, [diagnostic], definitions)
    assert not plan.syntax and (plan.start_line, plan.end_line) == (0, 2)
    case = Broken("f.py", text, 2, "", (0, 2), "", "", "")
    other = "def f(radius):\n    area = 3.0 * radius * radius\n    return 2 * 3.14 * radus"
    result = run(case, plan, other)
    assert result.new_text is None and "does not change the code the problem is about" in (
        result.message
    )
    # The same line, but not the problem's characters.
    other = "def f(radius):\n    area = 3.14 * radius * radius\n    return 3 * 3.14 * radus"
    assert run(case, plan, other).new_text is None
    good = "def f(radius):\n    area = 3.14 * radius * radius\n    return 2 * 3.14 * radius"
    result = run(case, plan, good)
    assert (result.start_line, result.end_line) == (2, 3)
    # And no syntax error added anywhere.
    bad = "def f(radius):\n    area = (3.14 * radius * radius\n    return 2 * 3.14 * radius"
    assert run(case, plan, bad).new_text is None


def _random_answers(case: Broken, rng: random.Random) -> list[str]:
    lines = case.text.split("\n")
    words = case.text.replace("\n", " ").split() + list("(){}[];:,.=+-*\"'") + ["end", "\t"]
    answers = []
    for _ in range(12):  # random tokens of the file and of code
        answers.append(
            "".join(
                rng.choice(words) + rng.choice(["", " ", "\n", "  "])
                for _ in range(rng.randint(1, 30))
            )
        )
    for _ in range(8):  # random bytes as the model's text
        raw = bytes(rng.randrange(256) for _ in range(rng.randint(1, 80)))
        answers.append(raw.decode("utf-8", "replace"))
    for _ in range(12):  # random lines of the file
        answers.append("\n".join(rng.choice(lines) for _ in range(rng.randint(1, 8))))
    for _ in range(8):  # the correct fix, mangled by one character
        fixed = case.fixed or "x"
        at = rng.randrange(len(fixed) + 1)
        answers.append(fixed[:at] + rng.choice(words) + fixed[at + 1 :])
    return answers


@pytest.mark.parametrize("case", BROKEN, ids=IDS)
def test_random_answers_never_add_errors_or_leave_the_region(case: Broken) -> None:
    plan = plan_of(case)
    before = errors(case.text, case.path)
    rng = random.Random(f"fuzz-{case.path}")
    applied = 0
    for answer in _random_answers(case, rng):
        result = run(case, plan, answer)
        if result.new_text is None:
            continue
        applied += 1
        assert in_region(result, plan), (answer, result)
        after = result.apply(case.text)
        assert errors(after, case.path) < before, (answer, after)
    assert applied <= 8  # (only some mangled fixes can still be fixes)
