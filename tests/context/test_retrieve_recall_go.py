"""Go's own rules of names, and the order that fills a small budget (issue 16, round 3).

Each workspace reproduces a class of misses measured on real Go modules
(bench/retrieval_bench.py: gin, prometheus client_golang): a bare name taken for
another package's definition, build-constrained variants of one name, a dot import,
long doc comments in the cheap form of a definition, and bodies packed before the
signatures the next line may need. The wanted definition must be in the packed
context at a 1K-token budget.
"""

from __future__ import annotations

from context.symbols import extract_source
from tests.context.recall_support import BUDGET
from tests.context.recall_support import context_at_end as _context_at_end
from tests.context.recall_support import write_tree as _write

GO_MOD = "module example.com/app\n\ngo 1.22\n"


def _documented(name: str, comment_lines: int, body_lines: int, args: str = "x int") -> str:
    """A function with a long doc comment and body, as real Go code documents them."""
    comment = "".join(
        f"// {name} line {i} of its documentation, long enough to cost tokens here.\n"
        for i in range(comment_lines)
    )
    body = "".join(f"\tx = x + {i} // one more step of the work\n" for i in range(body_lines))
    return f"{comment}func {name}({args}) int {{\n{body}\treturn x\n}}\n\n"


_FAR_BODY = "".join(f"\tx{i} := x{i - 1} + 1\n" for i in range(1, 40))


def test_go_bare_names_are_never_another_packages(tmp_path):
    """`config`, `handler`, ... near the cursor are local variables; functions of those
    names in other packages cannot be what they mean (another package's name is
    written `pkg.Name` in Go). They are not packed, and `parseHeader`, of the cursor's
    package and used far above, is."""
    files = {
        "go.mod": GO_MOD,
        "api/headers.go": (
            "package api\n\n// parseHeader splits a raw header line.\n"
            "func parseHeader(line string) string {\n\treturn line\n}\n"
        ),
    }
    locals_ = ["config", "handler", "registry", "counter", "metrics", "labels"]
    for i, name in enumerate(locals_):
        files[f"other{i}/{name}.go"] = f"package other{i}\n\n" + _documented(name, 8, 2)
    root = _write(tmp_path, files)
    text = (
        "package api\n\n"
        "func first(raw string) string {\n\treturn parseHeader(raw)\n}\n\n"
        "func second() int {\n\tx0 := 0\n"
        + _FAR_BODY
        + "".join(f"\t{name} := x{i}\n" for i, name in enumerate(locals_))
        + "\t"
    )
    packed = _context_at_end(root, "api/api.go", text)
    assert "func parseHeader(line string) string {" in packed.text, packed.text
    assert "func config(" not in packed.text, packed.text


def test_go_build_variants_of_a_name_come_once(tmp_path):
    """`pollWait` is defined by `poll_linux.go`, `poll_darwin.go` and
    `poll_windows.go`, of which a build compiles one: only the variant nearest the
    current file (`conn_linux.go`) is packed, which leaves room for `dial`."""
    files = {"go.mod": GO_MOD}
    for system in ("darwin", "linux", "windows"):
        files[f"netx/poll_{system}.go"] = f"//go:build {system}\n\npackage netx\n\n" + _documented(
            "pollWait", 8, 2
        ).replace("x int", f"fd{system.title()} int")
    files["netx/dial.go"] = "package netx\n\n" + _documented("dial", 4, 2, "addr string")
    root = _write(tmp_path, files)
    text = (
        "package netx\n\n"
        'func open() int {\n\treturn dial("a")\n}\n\n'
        "func read() int {\n\tx0 := 0\n" + _FAR_BODY + "\tpollWait(x39)\n\t"
    )
    packed = _context_at_end(root, "netx/conn_linux.go", text)
    assert "func pollWait(fdLinux int) int {" in packed.text, packed.text
    assert "fdWindows" not in packed.text and "fdDarwin" not in packed.text, packed.text
    assert "func dial(addr string) int {" in packed.text, packed.text


def test_go_dot_import_names_are_used_bare(tmp_path):
    """`import . "example.com/app/dsl"` makes `Expect` usable bare; four other packages
    define an `Expect` too (too many to follow by name): the dot import says which."""
    files = {
        "go.mod": GO_MOD,
        "dsl/expect.go": (
            "package dsl\n\n// Expect starts an assertion on a value.\n"
            "func Expect(actual any) Assertion {\n\treturn Assertion{}\n}\n\n"
            "type Assertion struct{}\n"
        ),
    }
    for i in range(4):
        files[f"lib{i}/expect.go"] = (
            f"package lib{i}\n\nfunc Expect(v{i} int) int {{\n\treturn v{i}\n}}\n"
        )
    root = _write(tmp_path, files)
    text = (
        'package app_test\n\nimport (\n\t"testing"\n\n\t. "example.com/app/dsl"\n)\n\n'
        "func TestIt(t *testing.T) {\n\tExpect(1)\n\t"
    )
    packed = _context_at_end(root, "app_test.go", text)
    assert "func Expect(actual any) Assertion {" in packed.text, packed.text


def test_go_blank_identifier_is_no_definition() -> None:
    """`var _ Collector = ...` names nothing code can use; `func init()` stays a
    definition of its file (the function around a cursor in it)."""
    source = (
        b"package metrics\n\n"
        b"var _ Collector = (*counter)(nil)\n\n"
        b"func init() {\n\tregister()\n}\n\n"
        b"func register() {}\n"
    )
    _, raw = extract_source(source, "go")
    names = sorted((d[0], d[1]) for d in raw[0])
    assert names == [("init", "function"), ("register", "function")], names


def test_go_init_and_main_are_never_offered(tmp_path):
    """Every file of a package may have a `func init()` and a `package main` folder has
    `func main()`: run, never called, they are not names of the package to offer
    (`init` near the cursor is a local's name here)."""
    files = {"go.mod": GO_MOD}
    for i in range(3):
        files[f"cmd/tool/setup{i}.go"] = "package main\n\n" + _documented("init", 8, 2, "").replace(
            "init() int", "init()"
        )
    files["cmd/tool/main.go"] = "package main\n\n" + _documented("main", 8, 2, "")
    root = _write(tmp_path, files)
    text = "package main\n\nfunc run() {\n\tinit := 1\n\tmain := init\n\t"
    packed = _context_at_end(root, "cmd/tool/run.go", text)
    assert "func init(" not in packed.text and "func main(" not in packed.text, packed.text


def test_long_doc_comments_stay_out_of_the_cheap_form(tmp_path):
    """Three functions used near the cursor carry 20-line doc comments: their cheap
    forms are their signatures (the comments come with the whole form), so `encode`,
    used far above, fits the budget too."""
    files = {
        "go.mod": GO_MOD,
        "codec/encode.go": "package codec\n\n" + _documented("encode", 3, 2, "v int"),
    }
    for name in ("readFrame", "writeFrame", "flushFrame"):
        files[f"codec/{name}.go"] = "package codec\n\n" + _documented(name, 20, 20)
    root = _write(tmp_path, files)
    text = (
        "package codec\n\n"
        "func marshal(v int) int {\n\treturn encode(v)\n}\n\n"
        "func loop() int {\n\tx0 := 0\n"
        + _FAR_BODY
        + "\treadFrame(x1)\n\twriteFrame(x2)\n\tflushFrame(x3)\n\t"
    )
    packed = _context_at_end(root, "codec/loop.go", text)
    assert "func encode(v int) int {" in packed.text, packed.text
    assert "func readFrame(x int) int {" in packed.text, packed.text


def test_signatures_the_next_line_may_need_before_bodies(tmp_path):
    """`timer_test.go` tests `timer.go`: `NewTimer`'s signature (the fill) comes before
    the whole bodies of the helpers the cursor's lines already call, whose signatures
    are shown anyway."""
    files = {
        "go.mod": GO_MOD,
        "metrics/timer.go": (
            "package metrics\n\n// NewTimer starts a timer that observes its duration.\n"
            "func NewTimer(name string) *Timer {\n\treturn &Timer{name: name}\n}\n\n"
            "type Timer struct {\n\tname string\n}\n"
        ),
    }
    helpers = [f"check{i}" for i in range(8)]
    for name in helpers:
        files[f"metrics/{name}.go"] = "package metrics\n\n" + _documented(name, 1, 13)
    root = _write(tmp_path, files)
    calls = "".join(f"\t{name}(1)\n" for name in helpers)
    text = (
        'package metrics\n\nimport "testing"\n\nfunc TestTimerObserves(t *testing.T) {\n'
        + calls
        + "\t"
    )
    packed = _context_at_end(root, "metrics/timer_test.go", text)
    assert "func NewTimer(name string) *Timer {" in packed.text, packed.text
    assert all(f"func {name}(x int) int {{" in packed.text for name in helpers), packed.text


def test_go_package_name_from_the_package_clause(tmp_path):
    """The name an import binds is the package clause's, not the folder's:
    `example.com/app/go-yaml` is package `yaml`, `example.com/app/lib/v2` is `lib`.
    `yaml.Marshal` and `lib.Open` near the cursor come from them, before the twenty
    functions of `yaml` the package's other files use."""
    steps = "".join(_documented(f"Step{i}", 4, 2) for i in range(20))
    calls = "".join(f"\tyaml.Step{i}(1)\n" for i in range(20))
    files = {
        "go.mod": GO_MOD,
        "go-yaml/yaml.go": (
            "package yaml\n\n// Marshal encodes a value as YAML.\n"
            "func Marshal(v any) ([]byte, error) {\n\treturn nil, nil\n}\n"
        ),
        "go-yaml/steps.go": "package yaml\n\n" + steps,
        "lib/v2/open.go": (
            "package lib\n\n// Open opens a store.\nfunc Open(path string) error {\n"
            "\treturn nil\n}\n"
        ),
    }
    for i in range(3):
        files[f"api/user{i}.go"] = (
            f'package api\n\nimport "example.com/app/go-yaml"\n\nfunc user{i}() {{\n{calls}}}\n'
        )
    root = _write(tmp_path, files)
    text = (
        'package api\n\nimport (\n\t"example.com/app/go-yaml"\n\t"example.com/app/lib/v2"\n)\n\n'
        'func save(v any) error {\n\tyaml.Marshal(v)\n\treturn lib.Open("x")\n}\n\n'
    )
    packed = _context_at_end(root, "api/api.go", text)
    assert "func Marshal(v any) ([]byte, error) {" in packed.text, packed.text
    assert "func Open(path string) error {" in packed.text, packed.text


def test_go_test_functions_are_no_names_of_the_package(tmp_path):
    """`TestX` and `BenchmarkX` functions are run by `go test`, never called: sixty of
    them declared first do not take the fill's places from `newRequest`, a helper the
    package's test files can call."""
    tests = "".join(
        f"func TestCase{i}(t *testing.T) {{\n\tt.Log({i})\n}}\n\n"
        f"func BenchmarkCase{i}(b *testing.B) {{\n\tb.Log({i})\n}}\n\n"
        for i in range(30)
    )
    root = _write(
        tmp_path,
        {
            "go.mod": GO_MOD,
            "api/api_test.go": (
                'package api\n\nimport "testing"\n\n'
                + tests
                + "// newRequest builds a request for the handler under test.\n"
                "func newRequest(method, path string) *Request {\n\treturn nil\n}\n"
            ),
        },
    )
    text = 'package api\n\nimport "testing"\n\nfunc TestUsers(t *testing.T) {\n\t'
    packed = _context_at_end(root, "api/users_test.go", text)
    assert "func newRequest(method, path string) *Request {" in packed.text, packed.text
    assert "TestCase0" not in packed.text, packed.text


def test_a_small_budget_holds_32_fill_signatures_per_1k(tmp_path):
    """The fill offers signatures alone (one line each), so a 1K budget has room for
    more than sixteen: `writeJSON`, used by two files of the package, comes after
    twenty-four names used by three, and is still packed."""
    popular = [f"step{i}" for i in range(24)]
    files = {
        "go.mod": GO_MOD,
        "server/render.go": (
            "package server\n\n// writeJSON writes a value as JSON.\n"
            "func writeJSON(w int, v int) {\n}\n"
        ),
        "server/steps.go": "package server\n\n"
        + "".join(f"func {name}(x int) int {{\n\treturn x\n}}\n\n" for name in popular),
    }
    calls = "".join(f"\t{name}(1)\n" for name in popular)
    for i in range(3):
        json = "\twriteJSON(1, 2)\n" if i < 2 else ""
        files[f"server/handler{i}.go"] = (
            f"package server\n\nfunc handler{i}() {{\n{calls}{json}}}\n"
        )
    root = _write(tmp_path, files)
    packed = _context_at_end(root, "server/users.go", "package server\n\nfunc users() {\n\t")
    assert "func writeJSON(w int, v int) {" in packed.text, packed.text
    assert packed.tokens <= BUDGET
