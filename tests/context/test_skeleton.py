"""The index's cut parse of Python (function bodies skipped) extracts exactly what a parse
of the whole file does: on hand-written traps, on random edits and on the standard
library installed on this machine (nothing is downloaded)."""

from __future__ import annotations

import os
import random
import sysconfig
import textwrap
import time

import pytest

from context import symbols
from context.skeleton import included_ranges, skipped_spans
from context.symbols import extract, parse, parse_skeleton

FILLER = "\n".join(f"    value_{i} = compute(value_{i - 1}, {i})" for i in range(1, 16))


def body(indent: int = 4) -> str:
    """Enough statements (one per line) for a body to be worth cutting."""
    return textwrap.indent(textwrap.dedent(FILLER), " " * indent)


def with_bodies(source: str) -> str:
    """``source`` with each ``@B<n>@`` replaced by a body indented n spaces."""
    for n in (12, 8, 4):
        source = source.replace(f"@B{n}@", body(n))
    return source


# Each case: (name, source, whether something must be cut).
_CASES: list[tuple[str, str, bool]] = [
    (
        "docstring and imports at every depth",
        '''
import os


def first(a, b=None):
    """Doc of first.

    More doc, with a def inside it:
        def fake():
            return 1
    """
@B4@
    from .sibling import helper
@B4@
    if a:
        import json
    try:
        import yaml
    except ImportError:
        yaml = None
    if b: import re
@B4@
    return helper(a)
''',
        True,
    ),
    (
        "class with methods, decorators, async and black-style signatures",
        '''
class Service(Base, metaclass=Meta):
    """A service."""

    limit = 10

    @property
    def name(self):
        # a comment before the docstring
        """The name."""
@B8@
        return self._name

    async def fetch(
        self,
        url: str,
        retries: int = 3,
    ) -> bytes:
@B8@
        return await self.client.get(
            url,
            retries=retries,
        )

    def one_liner(self): return 1
''',
        True,
    ),
    (
        "compound last statements",
        """
def tail_if(x):
@B4@
    if x:
@B8@
        return 1
    elif x is None:
@B8@
        return 2
    else:
@B8@
        return 3


def tail_try(x):
@B4@
    try:
@B8@
    except (KeyError, ValueError) as e:
@B8@
        raise
    finally:
@B8@
        cleanup()


def tail_match(x):
@B4@
    match x:
        case [a, b]:
@B12@
        case _:
@B12@
            pass


def tail_nested_def():
@B4@
    def inner(y):
@B8@
        return y
    return inner
""",
        True,
    ),
    (
        "strings that look like code",
        '''
def sql():
@B4@
    query = """
SELECT *
FROM t
def not_a_function():
    import nothing
"""
@B4@
    text = "brackets ( [ { in a string"
    other = \'\'\'
        import also_nothing
    \'\'\'
@B4@
    return query, text, other


def after():
@B4@
    return 2
''',
        True,
    ),
    (
        "a body that ends inside a dedented string",
        '''
def dedented():
@B4@
    return """
not indented
"""


def later():
@B4@
    return 1
''',
        True,
    ),
    (
        "continuation lines",
        """
def continued():
@B4@
    total = 1 + \\
2
@B4@
    message = "one \\
two"
@B4@
    return total, message


def closer():
@B4@
    return call(
        1,
    )
""",
        True,
    ),
    (
        "a bare string as the last statement",
        """
def no_doc():
@B4@
    "not a docstring"


def with_doc():
    "A one-quote docstring."
@B4@
    "still not the docstring"
""",
        True,
    ),
    (
        "comments at column 0 and blank lines",
        """
def commented():
@B4@
# a comment at column 0, inside the body
@B4@

    # trailing comment


# leading comment of the next one
def next_one():
@B4@
    return 1
""",
        True,
    ),
    (
        "tabs are not modelled",
        "def tabbed():\n" + "\n".join(f"\tv{i} = f(v{i - 1})" for i in range(1, 40)) + "\n",
        False,
    ),
    (
        "CRLF is not modelled",
        ("def crlf():\n@B4@\n    return 1\n").replace("\n", "\r\n"),
        False,
    ),
    ("no trailing newline", "def last():\n@B4@\n    return 1", True),
    ("empty", "", False),
]


CASES = [(name, with_bodies(source), cuts) for name, source, cuts in _CASES]


def _extract(source: bytes, cut: bool) -> symbols.RawSymbols:
    tree = parse_skeleton(source) if cut else parse(source, "python")
    return extract(tree, source, "python", references=False)


@pytest.mark.parametrize(("source", "cuts"), [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_cut_parse_extracts_the_same(source: str, cuts: bool) -> None:
    data = source.encode()
    spans = skipped_spans(data)
    assert bool(spans) == cuts
    whole = _extract(data, cut=False)
    assert whole[0] or not data, "the case defines something"
    assert _extract(data, cut=True) == whole
    # The spans are sorted, disjoint, and start and end on line starts.
    prev = 0
    for start, end, _ in spans:
        assert prev <= start < end <= len(data)
        assert start == 0 or data[start - 1 : start] == b"\n"
        assert data[end - 1 : end] == b"\n"
        prev = end


def test_what_is_cut_is_inside_function_bodies() -> None:
    data = CASES[0][1].encode()
    spans = skipped_spans(data)
    cut = b"".join(data[a:b] for a, b, _ in spans)
    assert len(cut) > len(data) // 2
    for kept in (
        b"def first",
        b"from .sibling import helper",
        b"import json",
        b"import yaml",
        b"import re",
        b"return helper(a)",
        b'"""Doc of first.',
    ):
        assert kept not in cut
    tree = parse_skeleton(data)
    assert not tree.root_node.has_error
    # Positions in the cut tree are those of the whole file.
    ranges = included_ranges(data, spans)
    assert ranges[0].start_byte == 0 and ranges[-1].end_byte == len(data)
    for r in ranges:
        assert r.start_point.row == data.count(b"\n", 0, r.start_byte)


def test_a_wrong_cut_falls_back_to_the_whole_parse(monkeypatch: pytest.MonkeyPatch) -> None:
    data = CASES[2][1].encode()
    whole = _extract(data, cut=False)
    # A cut in the middle of a line leaves a syntax error: the file is parsed again whole.
    middle = data.index(b"value_3 = ")
    monkeypatch.setattr(symbols, "skipped_spans", lambda _: [(middle, middle + 40, False)])
    tree = parse_skeleton(data)
    assert not tree.root_node.has_error
    assert extract(tree, data, "python", references=False) == whole
    # extract_source, which the index's workers call, takes the same path.
    assert symbols.extract_source(data, "python", references=False)[1] == whole


# Found by an adversarial review of the lexical pass: triple quotes and brackets inside
# comments, one-quote strings or the other kind of string, escaped quotes, `def` lines
# inside strings. Each made the cut parse extract something else than the whole parse
# until the cuts were checked against the tree and lexed (``consistent``).
F = "    x = 0" + " + 0" * 75 + "\n"
F8 = "    " + F
REVIEWED = {
    "a kept import line opens a string": (
        'def f():\n    import os; s = \'"""\' + """\n    """\n    # """\n'
        + F
        + '    return s\nX = 1  # """\n'
    ),
    "escaped quotes in triple strings": (
        "def f():\n    s = '''a\\'''\n    import os\n    '''\n    t = '''b\\''' c'''\n"
        + F
        + "    return s\nY = 1  # '''\n"
    ),
    "a bracket in a comment ends an import early": (
        "def f():\n    from m import (a,  # )\n    b)\n" + F + "    y = (\n    c)\n"
    ),
    "an import after a one-line if, a bracket in a string": (
        'def f():\n    if x: from m import (a,  # import\n    b)\n    print(")")\n'
        + F
        + "    y = (\n    c)\n"
    ),
    "an import inside a string": (
        'def f():\n    t = \'"""\'\n    s = """\n    import os\n    """\n    u = \'"""\'\n'
        + F
        + "    return s\n"
    ),
    "a def inside a string at module level": (
        'X = ("""\ndef fake():\n    0, """,\n    # """\n    0'
        + ", 0" * 100
        + ',\n    1)\nY = 1  # """)\n'
    ),
    "a body ending inside a string at column 0": (
        'def f():\n    t = \'"""\'\n' + F + '    s = """\n    c\n"""\nY = 1  # """\n'
    ),
    "a def inside a string before a method": (
        "class T:\n    SRC = '''\ndef fake():\n    pass'''\n    def real(self):\n"
        '        """Doc."""\n' + F8 + "        return 1\n"
    ),
}


@pytest.mark.parametrize("source", list(REVIEWED.values()), ids=list(REVIEWED))
def test_reviewed_traps_extract_the_same(source: str) -> None:
    data = source.encode()
    assert _is_python(data) and not parse(data, "python").root_node.has_error
    assert _extract(data, cut=True) == _extract(data, cut=False)


# A second review, of the checked version: a string kept after a cut becomes the first
# statement (the docstring); a line of only a backslash (tree-sitter ends the block
# there, CPython does not); and Python 3.12 f-strings, whose fields may hold any quotes
# and span lines (PEP 701).
F20 = "    x = 1\n" * 20
G32 = "    x = 1\n" * 32
REVIEWED_AGAIN = {
    "a kept string becomes the docstring": "def f():\n"
    + F20
    + '    "import"\n'
    + F20
    + "    return x\n",
    "a string then a comment on imports": (
        "def f():\n" + F20 + '    "note"\n    # import later\n' + F20 + "    return x\n"
    ),
    "a backslash line in a cut": 'def f():\n    \\\n    "doc"\n' + G32 + "    return x\n",
    "a backslash line kept after a cut": (
        "class C:\n    def f(self):\n"
        + "        x = 1\n" * 20
        + "        \\\n\n    def g(self):\n        pass\n"
    ),
}
# Valid from Python 3.12 on (this suite may run on 3.10): tree-sitter parses them.
REVIEWED_312 = {
    "nested quotes in an f-string hide a triple quote": (
        "def f():\n"
        + F20
        + '    y = f"{"#"}" + \'"""\' + """\n'
        + F20
        + "    import os\n"
        + F20
        + '    """ # """\n'
        + F20
        + "    return y\n"
    ),
    "an f-string field over two lines": (
        "def f():\n"
        + F20
        + '    y = f"{\n'
        + "    x:'}'; import os # \"\n"
        + F20
        + "    return y\n"
    ),
    "an f-string field over two lines, the import real": (
        "def f():\n"
        + F20
        + '    y = f"{\n'
        + "    x:'}\"'; '; import os; q = ' # '\n"
        + F20
        + "    return y\n"
    ),
    "an f-string docstring cut in a field": (
        'def f():\n    f"""doc\n    {x +\n    y + """\n    import os\n    z = 1 + """}"""\n'
        + G32
        + "    return y\n"
    ),
}


@pytest.mark.parametrize("source", list(REVIEWED_AGAIN.values()), ids=list(REVIEWED_AGAIN))
def test_reviewed_again_traps_extract_the_same(source: str) -> None:
    data = source.encode()
    assert _is_python(data) and not parse(data, "python").root_node.has_error
    assert _extract(data, cut=True) == _extract(data, cut=False)


@pytest.mark.parametrize("source", list(REVIEWED_312.values()), ids=list(REVIEWED_312))
def test_python_312_f_strings_extract_the_same(source: str) -> None:
    data = source.encode()
    assert not parse(data, "python").root_node.has_error
    assert _extract(data, cut=True) == _extract(data, cut=False)


def test_a_cut_without_syntax_error_but_not_between_statements_is_refused(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A cut from inside one string to inside another parses cleanly, and reads the code
    between them as a string: the checks refuse it."""
    data = (
        'def f():\n    a = """\n    x\n    """\n    import os\n    b = """\n    y\n    """\n' + F
    ).encode()
    start = data.index(b"    x\n")
    end = data.index(b"    y\n")
    monkeypatch.setattr(symbols, "skipped_spans", lambda _: [(start, end, False)])
    tree = parse_skeleton(data)
    assert extract(tree, data, "python", references=False) == _extract(data, cut=False)
    assert extract(tree, data, "python", references=False)[1]  # `import os` is there


def test_deep_nesting_and_nests_of_defs_stay_cheap() -> None:
    # Valid Python inside a string: 520 nested defs (the pass recursed once per level).
    nest = "".join(" " * i + "def f():\n" for i in range(520))
    data = ('X = """\n' + nest + (" " * 520 + "x = compute(x)\n") * 25 + '"""\n').encode()
    assert _extract(data, cut=True) == _extract(data, cut=False)
    # A cut holding a triple quote and an unclosed line of escaped quotes (its lexing was
    # quadratic: 64 s for 129 KB).
    filler = "".join(f"    value_{i} = compute(value_{i - 1}, {i})\n" for i in range(1, 8))
    line = '    "' + '\\"' * 64000 + "\n"
    data = ("def f():\n" + filler + '    z = """ """\n' + line + filler + "    return 1\n").encode()
    started = time.process_time()
    parse_skeleton(data)
    assert time.process_time() - started < 5
    # 2,000 nested defs one space apart (the block-end searches were cubic: 33 s).
    nest = "".join(" " * i + "def f():\n" for i in range(2000)) + " " * 2000 + "pass\n"
    started = time.process_time()
    skipped_spans(nest.encode())
    assert time.process_time() - started < 5


# Statements inserted at random line starts, indented like the line they precede:
# imports at any depth, strings and continuations that look like code or cross lines.
STATEMENTS = [
    "import m",
    "from . import n",
    "from .import o",
    "if x: import p",
    'x = """\ndef fake():\n    import q\n"""',
    "t = '''\n  (\n'''",
    's = "a(b"',
    "y = (1,\n2)",
    "z = 1 + \\\n2",
    "# import c",
    '"""a string statement"""',
    "else_ = [",
    "]",
    "pass",
]


MUTATIONS = 4


def _mutate(rng: random.Random, data: str) -> str:
    lines = data.split("\n")
    for _ in range(rng.randrange(1, MUTATIONS)):
        i = rng.randrange(len(lines))
        line = lines[i]
        indent = line[: len(line) - len(line.lstrip(" "))]
        what = rng.random()
        if what < 0.6:
            lines.insert(i, indent + rng.choice(STATEMENTS))
        elif what < 0.8:
            del lines[i]
        else:
            lines[i] = line[4:] if line.startswith("    ") else "    " + line
    return "\n".join(lines)


def _is_python(data: bytes) -> bool:
    """Whether Python itself accepts ``data`` (tree-sitter accepts some inconsistent
    dedents that Python rejects; what is extracted from those may differ)."""
    try:
        compile(data, "<edit>", "exec", dont_inherit=True)
    except (SyntaxError, ValueError):
        return False
    return True


def test_random_edits_extract_the_same() -> None:
    rng = random.Random(7)
    base = "".join(source for _, source, cuts in CASES if cuts)
    compared = cut = 0
    for _ in range(300):
        data = _mutate(rng, base).encode()
        whole_tree = parse(data, "python")
        if whole_tree.root_node.has_error or not _is_python(data):
            continue  # where the whole parse fails, the cut one may find more
        compared += 1
        cut += bool(skipped_spans(data))
        assert _extract(data, cut=True) == extract(whole_tree, data, "python", False), data
    assert compared > 50 and cut > compared // 2


def _stdlib_files() -> list[str]:
    root = sysconfig.get_paths()["stdlib"]
    out = []
    for folder, dirs, files in os.walk(root):
        dirs[:] = sorted(d for d in dirs if d not in ("site-packages", "test", "tests", "idlelib"))
        out.extend(os.path.join(folder, f) for f in sorted(files) if f.endswith(".py"))
    return out


def test_standard_library_extracts_the_same() -> None:
    files = _stdlib_files()[::3]
    assert len(files) > 100
    total = skipped = 0
    for path in files:
        with open(path, "rb") as f:
            data = f.read()
        tree = parse(data, "python")
        if tree.root_node.has_error:
            continue
        assert _extract(data, cut=True) == extract(tree, data, "python", False), path
        total += len(data)
        skipped += sum(b - a for a, b, _ in skipped_spans(data))
    assert skipped > total * 0.3  # the cut is in effect, on real code
