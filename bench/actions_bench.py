"""Code actions and syntax diagnostics: server-side time on a 2,000-line file.

On a real 2,000-line file (Django's django/db/models/expressions.py, fetched from PyPI;
the first 2,000 lines, cut at a top-level statement), through the same calls as the
server's handlers (`Runtime.plan_code_actions`, `Runtime.syntax_problems`; no model
needed: the list of actions is planned without it):

- listing: the actions at random cursor lines, the text unchanged (what an editor asks at
  every cursor move), and at the line of a syntax error with its diagnostic, right after
  the edit that made it (the diagnostics computed first, as the editor had them: the
  definitions of the new text and the fix's region are found in the timed call);
- diagnostics after an edit: a line typed character by character at random places (the
  syntax breaks and heals as it is typed), the document's syntax errors after each
  character (incremental re-parse and the error walk).

Prints p50/p95 of each, in milliseconds of wall time and of the thread's CPU time, and
the load average before and after.

    python bench/actions_bench.py [--requests 200] [--file django/db/models/query.py --lines 0]
"""

from __future__ import annotations

import argparse
import os
import pathlib
import random
import statistics
import sys
import time

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent))

import _sources  # noqa: E402

from lsp_server.actions.plan import Diagnostic  # noqa: E402
from lsp_server.completion.stats import Stats  # noqa: E402
from lsp_server.runtime import Runtime  # noqa: E402
from lsp_server.settings import Settings  # noqa: E402

FILE = "django/db/models/expressions.py"
LINES = 2000


def two_thousand_lines(name: str = FILE, count: int = LINES) -> str:
    text = (_sources.django() / name).read_text()
    if not count or text.count("\n") <= count:
        return text
    lines = text.split("\n")[:count]
    while lines and (not lines[-1] or lines[-1][0] in " \t)]}"):
        lines.pop()  # end before a top-level statement's middle
    while lines and not (lines[-1] and lines[-1][0] not in " \t#@"):
        lines.pop()
    return "\n".join(lines[:-1]) + "\n"


def percentiles(samples: list[tuple[float, float]]) -> str:
    """p50/p95 of wall time and of the thread's CPU time (the machine may be shared)."""

    def of(values: list[float]) -> str:
        ordered = sorted(values)
        p95 = ordered[min(len(ordered) - 1, int(len(ordered) * 0.95))]
        return f"p50 {statistics.median(ordered):.2f} ms, p95 {p95:.2f} ms"

    wall, cpu = [w for w, _ in samples], [c for _, c in samples]
    return f"wall {of(wall)}; CPU {of(cpu)} (n={len(samples)})"


class Timer:
    def __enter__(self) -> Timer:
        self.wall, self.cpu = time.perf_counter(), time.thread_time()
        return self

    def __exit__(self, *exc: object) -> None:
        self.sample = (
            (time.perf_counter() - self.wall) * 1000,
            (time.thread_time() - self.cpu) * 1000,
        )


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--requests", type=int, default=200)
    parser.add_argument("--file", default=FILE, help="another file of Django 5.1")
    parser.add_argument("--lines", type=int, default=LINES, help="0: the whole file")
    args = parser.parse_args()
    text = two_thousand_lines(args.file, args.lines)
    path = str(pathlib.Path("/bench") / args.file)
    runtime = Runtime(Settings(), Stats())
    rng = random.Random(1)
    lines = text.split("\n")
    print(f"{args.file}: {len(lines) - 1} lines, {len(text)} bytes")
    print("load average: " + " ".join(f"{v:.2f}" for v in os.getloadavg()))

    # Listing at cursor moves (the first one parses the file; not counted).
    runtime.plan_code_actions(path, text, 0, 0, [])
    listing = []
    offered = 0
    for _ in range(args.requests):
        line = rng.randrange(len(lines) - 1)
        with Timer() as timer:
            plans = runtime.plan_code_actions(path, text, line, line, [])
        listing.append(timer.sample)
        offered += bool(plans)
    print(f"listing at a cursor move: {percentiles(listing)}; actions offered on {offered}")

    # Listing at a syntax error with its diagnostic.
    fixes = []
    for _ in range(max(20, args.requests // 4)):
        line = rng.randrange(1, len(lines) - 1)
        if not lines[line].strip():
            continue
        broken_lines = list(lines)
        broken_lines[line] = broken_lines[line] + " ("
        broken = "\n".join(broken_lines)
        problems = runtime.syntax_problems(path, broken)  # (the diagnostics came first)
        if not problems:
            continue
        p = problems[0]
        diagnostic = Diagnostic(p.message, p.line, p.end_line, "qwen-lsp", p.column, p.end_column)
        # (The request right after the edit: the definitions of this text are found too.)
        with Timer() as timer:
            plans = runtime.plan_code_actions(path, broken, p.line, p.line, [diagnostic])
        fixes.append(timer.sample)
        assert plans and plans[0].syntax
    print(f"listing at a syntax error:  {percentiles(fixes)}")

    # Diagnostics after an edit: a line typed character by character at random places
    # (the syntax breaks and heals as it is typed), the diagnostics after each one.
    runtime.syntax_problems(path, text)
    after_edit = []
    with_errors = 0
    typed = "result = compute(value, [first, second], key=lambda item: item.name)"
    for _ in range(max(1, args.requests // len(typed))):
        row = rng.randrange(1, len(lines) - 1)
        while not lines[row].strip():
            row += 1
        indent = lines[row][: len(lines[row]) - len(lines[row].lstrip())]
        for count in range(1, len(typed) + 1):
            current = "\n".join([*lines[:row], indent + typed[:count], *lines[row:]])
            with Timer() as timer:
                problems = runtime.syntax_problems(path, current)
            after_edit.append(timer.sample)
            with_errors += bool(problems)
        runtime.syntax_problems(path, text)  # (the line is undone before the next place)
    print(
        f"diagnostics after an edit: {percentiles(after_edit)}; "
        f"{with_errors} of {len(after_edit)} states had syntax errors"
    )
    print("load average: " + " ".join(f"{v:.2f}" for v in os.getloadavg()))


if __name__ == "__main__":
    main()
