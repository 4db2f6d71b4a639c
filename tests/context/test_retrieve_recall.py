"""Definitions the next line needs but the lines near the cursor do not name yet.

Each workspace reproduces a class of misses measured on real repositories
(bench/retrieval_bench.py): a Go name from another file of the same package, a Go
import inside the module, Rust paths through workspace crates, `crate::` and `super::`,
and a Python package imported whole (`import pkg`, then `pkg.name`). The cursor is at
the start of an empty line with nothing after it (the rest of the file not written
yet); the wanted definition must be in the packed context at a 1K-token budget, among
many other definitions that compete for it.
"""

from __future__ import annotations

import os

from tests.context.recall_support import BUDGET
from tests.context.recall_support import context_at_end as _context_at_end
from tests.context.recall_support import write_tree as _write


def _filler(prefix: str, n: int, fmt: str) -> str:
    """`n` documented definitions that compete for the budget."""
    return "".join(fmt.format(name=f"{prefix}{i}", i=i) for i in range(n))


_GO_FUNC = (
    "// {name} does step {i} of the request handling, which has many steps and\n"
    "// each needs a comment long enough to cost tokens in the prompt.\n"
    "func {name}(value int) int {{\n\treturn value + {i}\n}}\n\n"
)
_GO_BODY = "".join(f"\tx{i} := compute(x{i - 1})\n" for i in range(1, 40))


def test_go_same_package_name_used_earlier_in_the_file(tmp_path):
    """`parseHeader` is defined in another file of the package (Go needs no import for
    it) and used far above the cursor: it is what the file uses, so it comes first."""
    root = _write(
        tmp_path,
        {
            "go.mod": "module example.com/app\n\ngo 1.22\n",
            "server/headers.go": (
                "package server\n\n"
                "// parseHeader splits a raw header line into its name and value.\n"
                "func parseHeader(line string) (string, string) {\n\treturn line, line\n}\n"
            ),
            "server/steps.go": "package server\n\n" + _filler("step", 60, _GO_FUNC),
            "server/compute.go": "package server\n\nfunc compute(x int) int {\n\treturn x\n}\n",
        },
    )
    text = (
        "package server\n\n"
        "func first(raw string) string {\n\tname, _ := parseHeader(raw)\n\treturn name\n}\n\n"
        "func second() int {\n\tx0 := 0\n" + _GO_BODY + "\t"
    )
    packed = _context_at_end(root, "server/server.go", text)
    assert "func parseHeader(line string) (string, string) {" in packed.text, packed.text
    assert packed.tokens <= BUDGET


def test_go_same_package_fill_by_what_the_package_uses(tmp_path):
    """Nothing in the file names `writeJSON` yet, but the package's other files use it
    more than anything else it defines: the budget left is filled with the package's
    definitions, the most used first."""
    users = {
        f"server/handler{i}.go": (
            f"package server\n\nfunc handler{i}(w int) {{\n\twriteJSON(w, {i})\n}}\n"
        )
        for i in range(4)
    }
    root = _write(
        tmp_path,
        {
            "go.mod": "module example.com/app\n\ngo 1.22\n",
            "server/render.go": (
                "package server\n\n"
                "// writeJSON writes a value as JSON with the right content type.\n"
                "func writeJSON(w int, v int) {\n}\n"
            ),
            "server/steps.go": "package server\n\n" + _filler("step", 60, _GO_FUNC),
            **users,
        },
    )
    text = "package server\n\nfunc handleUsers(w int) {\n\t"
    packed = _context_at_end(root, "server/users.go", text)
    assert "func writeJSON(w int, v int) {" in packed.text, packed.text
    assert packed.tokens <= BUDGET


def test_go_module_internal_import(tmp_path):
    """`example.com/app/internal/auth` is a package of the module itself: the import is
    followed, and what the file already uses from it (`auth.Verify`, far above) is
    packed before the package's other names."""
    root = _write(
        tmp_path,
        {
            "go.mod": "module example.com/app\n\ngo 1.22\n",
            "internal/auth/verify.go": (
                "package auth\n\n"
                "// Verify checks a token's signature and expiry.\n"
                "func Verify(token string) error {\n\treturn nil\n}\n"
            ),
            "internal/auth/steps.go": "package auth\n\n"
            + _filler("Step", 60, _GO_FUNC).replace("int {", "int {"),
            "api/compute.go": "package api\n\nfunc compute(x int) int {\n\treturn x\n}\n",
        },
    )
    text = (
        "package api\n\n"
        'import "example.com/app/internal/auth"\n\n'
        "func login(token string) error {\n\treturn auth.Verify(token)\n}\n\n"
        "func second() int {\n\tx0 := 0\n" + _GO_BODY + "\t"
    )
    packed = _context_at_end(root, "api/api.go", text)
    assert "func Verify(token string) error {" in packed.text, packed.text


_RS_FN = (
    "/// {name} does step {i} of the work, documented at length so that it costs\n"
    "/// tokens in the prompt like a real function would.\n"
    "pub fn {name}(value: u32) -> u32 {{\n    value + {i}\n}}\n\n"
)
_RS_BODY = "".join(f"    let x{i} = x{i - 1} + 1;\n" for i in range(1, 40))


def _rust_workspace() -> dict[str, str]:
    return {
        "Cargo.toml": '[workspace]\nmembers = ["crates/core", "crates/cli"]\n',
        "crates/core/Cargo.toml": '[package]\nname = "app-core"\nversion = "0.1.0"\n',
        "crates/core/src/lib.rs": "pub mod config;\npub mod steps;\n",
        "crates/core/src/config.rs": (
            "/// Settings read from the command line and the environment.\n"
            "pub struct Config {\n    pub verbose: bool,\n}\n\n"
            "impl Config {\n"
            "    /// The default settings.\n"
            "    pub fn new() -> Config {\n        Config { verbose: false }\n    }\n}\n"
        ),
        "crates/core/src/steps.rs": _filler("step", 60, _RS_FN),
        "crates/cli/Cargo.toml": '[package]\nname = "app-cli"\nversion = "0.1.0"\n',
        "crates/cli/src/main.rs": "mod commands;\nmod util;\n\nfn main() {}\n",
        "crates/cli/src/util.rs": (
            "/// Prints a line with the program's prefix.\n"
            'pub fn say(text: &str) {\n    println!("app: {}", text);\n}\n'
        ),
        "crates/cli/src/commands/mod.rs": "pub mod run;\n\npub struct Outcome {\n    pub code: i32,\n}\n",
    }


def test_rust_workspace_crate_path(tmp_path):
    """`app_core::config::Config::new()`, a path through another crate of the workspace
    (its name with `-` read as `_`) written in the code far above, is packed."""
    root = _write(tmp_path, _rust_workspace())
    text = (
        "fn setup() -> bool {\n    app_core::config::Config::new().verbose\n}\n\n"
        "fn second() -> u32 {\n    let x0 = 0;\n" + _RS_BODY + "    "
    )
    packed = _context_at_end(root, "crates/cli/src/main.rs", text)
    assert "pub struct Config {" in packed.text, packed.text


def test_rust_crate_and_super_paths(tmp_path):
    """`crate::util::say` and `super::Outcome`, used far above, are packed."""
    root = _write(tmp_path, _rust_workspace())
    text = (
        "use crate::util;\n\n"
        "fn report(code: i32) -> super::Outcome {\n"
        '    crate::util::say("done");\n'
        "    super::Outcome { code }\n}\n\n"
        "fn second() -> u32 {\n    let x0 = 0;\n" + _RS_BODY + "    "
    )
    packed = _context_at_end(root, "crates/cli/src/commands/run.rs", text)
    assert "pub fn say(text: &str) {" in packed.text, packed.text
    assert "pub struct Outcome {" in packed.text, packed.text


_PY_FN = (
    "def {name}(value):\n"
    '    """Step {i} of the work, documented at length so that it costs tokens in the\n'
    '    prompt like a real function would."""\n'
    "    return value + {i}\n\n\n"
)


def _wide_package() -> dict[str, str]:
    names = [f"step{i}" for i in range(60)]
    return {
        "pkg/__init__.py": (
            "from .core import option as option\n"
            + "".join(f"from .steps import {n} as {n}\n" for n in names)
        ),
        "pkg/core.py": (
            "def option(*names, default=None):\n"
            '    """Attach an option to the command."""\n'
            "    return names, default\n"
        ),
        "pkg/steps.py": _filler("step", 60, _PY_FN),
    }


def test_python_package_imported_whole_names_already_used(tmp_path):
    """After `import pkg`, of `pkg`'s sixty names the one this file already uses
    (`pkg.option`, far above the cursor) is packed."""
    root = _write(tmp_path, _wide_package())
    body = "".join(f"    x{i} = x{i - 1} + 1\n" for i in range(1, 40))
    text = (
        "import pkg\n\n\n"
        "@pkg.option('--name')\ndef first(name):\n    return name\n\n\n"
        "def second():\n    x0 = 0\n" + body + "    "
    )
    packed = _context_at_end(root, "app/cli.py", text)
    assert "def option(*names, default=None):" in packed.text, packed.text


def test_python_package_imported_whole_names_the_neighbours_use(tmp_path):
    """Nothing in the file uses `pkg` yet, but the files beside it use `pkg.option`:
    it comes before the package's other names."""
    files = _wide_package()
    for i in range(3):
        files[f"app/cmd{i}.py"] = (
            f"import pkg\n\n\n@pkg.option('--n{i}')\ndef cmd{i}(n):\n    pass\n"
        )
    root = _write(tmp_path, files)
    text = "import pkg\n\n\n"
    packed = _context_at_end(root, "app/cli.py", text)
    assert "def option(*names, default=None):" in packed.text, packed.text


def test_fill_comes_after_what_the_cursor_names(tmp_path):
    """The fill never pushes out a definition named near the cursor: at a budget that
    holds little more than that one, it is the one packed."""
    files = _wide_package()
    files["pkg/util.py"] = 'def helper(value):\n    """Double it."""\n    return value * 2\n'
    root = _write(tmp_path, files)
    text = "import pkg\nfrom pkg.util import helper\n\n\ny = helper(1)\n"
    packed = _context_at_end(root, "app/cli.py", text, budget=60)
    assert "def helper(value):" in packed.text, packed.text
    assert packed.tokens <= 60


def test_rust_crate_tests_use_the_crate_whole(tmp_path):
    """A file of a crate's `tests/` uses the crate by its name, like a package imported
    whole: the names its root re-exports fill the budget, before the other names."""
    files = _rust_workspace()
    files["crates/core/src/lib.rs"] = (
        "pub mod config;\npub mod steps;\n\npub use crate::config::Config;\n"
    )
    root = _write(tmp_path, files)
    text = "#[test]\nfn reads_defaults() {\n    "
    packed = _context_at_end(root, "crates/core/tests/defaults.rs", text)
    assert "pub struct Config {" in packed.text, packed.text


_C_FN = (
    "/* {name} does step {i} of the encoder, which has many steps, each with a comment\n"
    "   long enough to cost tokens in the prompt. */\n"
    "int {name}(int value);\n\n"
)


def test_c_header_included_by_an_included_header(tmp_path):
    """`main.c` includes `api.h`, which includes `types.h`: the macro `types.h` defines
    (and the files beside `main.c` use) is in scope and packed, among the sixty
    functions of `api.h` that compete for the budget."""
    root = _write(
        tmp_path,
        {
            "include/lib/types.h": "#define LIB_BOOL int\n#define LIB_TRUE 1\n",
            "include/lib/api.h": '#include "types.h"\n\n' + _filler("lib_step", 60, _C_FN),
            "src/other.c": "#include <lib/api.h>\n\nLIB_BOOL other(void) { return LIB_TRUE; }\n",
            "src/third.c": "#include <lib/api.h>\n\nLIB_BOOL third(void) { return 0; }\n",
        },
    )
    text = "#include <lib/api.h>\n\nstatic "
    packed = _context_at_end(root, "src/main.c", text)
    assert "#define LIB_BOOL int" in packed.text, packed.text


def test_c_macro_at_the_end_of_a_long_include_chain(tmp_path):
    """`main.c` includes `api.h`, which reaches `common.h` through four more headers
    (as pybind11's headers reach `detail/common.h`): the macro there is in scope, and
    the files beside `main.c` use it; it is packed among the sixty functions of
    `api.h`."""
    chain = ["api.h", "cast.h", "pytypes.h", "buffer.h", "detail/class.h", "detail/common.h"]
    files = {
        f"include/lib/{name}": f'#include "{os.path.relpath(nxt, os.path.dirname(name) or ".")}"\n'
        for name, nxt in zip(chain, chain[1:], strict=False)
    }
    files["include/lib/api.h"] += _filler("lib_step", 60, _C_FN)
    files["include/lib/detail/common.h"] = (
        "#define LIB_NAMESPACE_BEGIN(name) namespace name {\n#define LIB_NAMESPACE_END(name) }\n"
    )
    for other in ("other", "third"):
        files[f"src/{other}.c"] = (
            "#include <lib/api.h>\n\nLIB_NAMESPACE_BEGIN(lib)\nint x;\nLIB_NAMESPACE_END(lib)\n"
        )
    root = _write(tmp_path, files)
    text = "#include <lib/api.h>\n\n"
    packed = _context_at_end(root, "src/main.c", text)
    assert "#define LIB_NAMESPACE_BEGIN(name)" in packed.text, packed.text


def test_c_header_sees_what_its_includer_defined(tmp_path):
    """`block_inc.h` is a template included by `bit_stream.c` after its `static`
    helpers: the header uses them without including anything."""
    root = _write(
        tmp_path,
        {
            "enc/bit_stream.c": (
                '#include "api.h"\n\n'
                "static void StoreTree(const int* histogram, int length) {\n"
                "  (void)histogram;\n  (void)length;\n}\n\n"
                '#define FN(X) X##Literal\n#include "block_inc.h"\n#undef FN\n'
            ),
            "enc/api.h": _filler("enc_step", 60, _C_FN),
            "enc/block_inc.h": "/* the file being edited */\n",
        },
    )
    text = "static void FN(BuildAndStore)(const int* histogram, int n) {\n  "
    packed = _context_at_end(root, "enc/block_inc.h", text)
    assert "static void StoreTree(const int* histogram, int length) {" in packed.text, packed.text


def test_c_platform_header_sees_its_includers_includer(tmp_path):
    """`platform/switch_amd64.h` is included by `select.h`, itself included by
    `switch.hpp` after it defines `SAVE_STATE`: two levels up, the macro is in scope."""
    root = _write(
        tmp_path,
        {
            "switch.hpp": (
                '#define SAVE_STATE(ref, diff) save_state(ref, diff)\n#include "select.h"\n'
            ),
            "select.h": (
                '#if defined(__amd64__)\n#include "platform/switch_amd64.h"\n#endif\n'
                + _filler("select_step", 40, _C_FN)
            ),
            "platform/switch_amd64.h": "/* the file being edited */\n",
        },
    )
    text = "static int slp_switch(void) {\n  int *stackref, stsizediff;\n  "
    packed = _context_at_end(root, "platform/switch_amd64.h", text)
    assert "#define SAVE_STATE(ref, diff)" in packed.text, packed.text


def test_rust_item_inside_a_cfg_macro(tmp_path):
    """`spawn_task` is defined inside `cfg_rt! { ... }` (an item macro, as tokio wraps
    most of its API): read as the item it expands to, the path far above finds it."""
    files = _rust_workspace()
    files["crates/core/src/lib.rs"] = (
        "pub mod config;\npub mod steps;\n\n"
        "cfg_rt! {\n"
        "    /// Runs `task` on the runtime.\n"
        "    pub fn spawn_task(task: u32) -> u32 {\n        task\n    }\n"
        "}\n"
    )
    root = _write(tmp_path, files)
    text = (
        "fn setup() -> u32 {\n    app_core::spawn_task(1)\n}\n\n"
        "fn second() -> u32 {\n    let x0 = 0;\n" + _RS_BODY + "    "
    )
    packed = _context_at_end(root, "crates/cli/src/main.rs", text)
    assert "pub fn spawn_task(task: u32) -> u32 {" in packed.text, packed.text


def test_rust_reexport_inside_an_inline_module(tmp_path):
    """`app_core::io::unix::AsyncFd`: `unix` is an inline module (inside an item macro)
    of `io/mod.rs` whose `pub use super::fd::AsyncFd` names the file beside it; `super`
    there is `io`, not the crate root."""
    files = _rust_workspace()
    files["crates/core/src/lib.rs"] = "pub mod config;\npub mod steps;\npub mod io;\n"
    files["crates/core/src/io/mod.rs"] = (
        "mod fd;\n\ncfg_net_unix! {\n    pub mod unix {\n"
        "        pub use super::fd::AsyncFd;\n    }\n}\n"
    )
    files["crates/core/src/io/fd.rs"] = (
        "/// A file descriptor registered with the reactor.\n"
        "pub struct AsyncFd {\n    pub fd: i32,\n}\n"
    )
    root = _write(tmp_path, files)
    text = (
        "use app_core::io::unix::AsyncFd;\n\n"
        "fn second() -> u32 {\n    let x0 = 0;\n" + _RS_BODY + "    "
    )
    packed = _context_at_end(root, "crates/cli/src/main.rs", text)
    assert "pub struct AsyncFd {" in packed.text, packed.text


def test_rust_crate_tests_use_the_crate_modules(tmp_path):
    """A crate's tests use its modules too (`app_core::time::sleep`): the modules its
    root declares are in scope, and what the other tests use comes first among the
    sixty functions of `steps`."""
    files = _rust_workspace()
    files["crates/core/src/lib.rs"] = "pub mod config;\npub mod steps;\npub mod time;\n"
    files["crates/core/src/time.rs"] = (
        "/// Waits until `ms` milliseconds have passed.\n"
        "pub fn sleep(ms: u64) -> u64 {\n    ms\n}\n"
    )
    for i in range(3):
        files[f"crates/core/tests/t{i}.rs"] = (
            f"#[test]\nfn waits{i}() {{\n    app_core::time::sleep({i});\n}}\n"
        )
    root = _write(tmp_path, files)
    text = "#[test]\nfn reads_defaults() {\n    "
    packed = _context_at_end(root, "crates/core/tests/defaults.rs", text)
    assert "pub fn sleep(ms: u64) -> u64 {" in packed.text, packed.text


def test_go_test_file_gets_the_file_it_tests(tmp_path):
    """`timer_test.go` tests `timer.go`: `NewTimer` comes before the sixty functions
    the package's other files use more."""
    files = {
        "go.mod": "module example.com/app\n\ngo 1.22\n",
        "metrics/timer.go": (
            "package metrics\n\n// NewTimer starts a timer that observes its duration.\n"
            "func NewTimer(name string) *Timer {\n\treturn &Timer{name: name}\n}\n\n"
            "type Timer struct {\n\tname string\n}\n"
        ),
        "metrics/steps.go": "package metrics\n\n" + _filler("step", 60, _GO_FUNC),
    }
    calls = "".join(f"\tstep{i}(1)\n" for i in range(60))
    for i in range(3):
        files[f"metrics/user{i}.go"] = f"package metrics\n\nfunc user{i}() {{\n{calls}}}\n"
    root = _write(tmp_path, files)
    text = 'package metrics\n\nimport "testing"\n\nfunc TestTimerObserves(t *testing.T) {\n\t'
    packed = _context_at_end(root, "metrics/timer_test.go", text)
    assert "func NewTimer(name string) *Timer {" in packed.text, packed.text


_JAVA_CLASS = (
    "package javafx.beans.property;\n\n"
    "/** {name} holds one kind of value, documented at length so that it costs tokens\n"
    " * in the prompt like a real class would. */\n"
    "public abstract class {name} {{\n    public abstract int get{i}();\n}}\n"
)


def test_java_names_sharing_the_file_name_come_first(tmp_path):
    """`ReadOnlyStringWrapper` extends `ReadOnlyStringPropertyBase`, a class of its
    package (no import) that nothing names yet: the class sharing the file name's
    words comes before forty classes the package's other files use more."""
    folder = "javafx/beans/property"
    files = {
        f"{folder}/ReadOnlyStringPropertyBase.java": _JAVA_CLASS.format(
            name="ReadOnlyStringPropertyBase", i=0
        ),
    }
    uses = " ".join(f"Kind{i} k{i};" for i in range(40))
    for i in range(40):
        files[f"{folder}/Kind{i}.java"] = _JAVA_CLASS.format(name=f"Kind{i}", i=i)
    for i in range(3):
        files[f"{folder}/User{i}.java"] = (
            f"package javafx.beans.property;\n\nclass User{i} {{\n    {uses}\n}}\n"
        )
    root = _write(tmp_path, files)
    text = "package javafx.beans.property;\n\nimport javafx.beans.value.ObservableValue;\n\n"
    packed = _context_at_end(root, f"{folder}/ReadOnlyStringWrapper.java", text)
    assert "public abstract class ReadOnlyStringPropertyBase {" in packed.text, packed.text


_JAVA_DOCUMENTED = (
    "package {package};\n\n/**\n"
    + "".join(
        f" * {{name}} line {k} of a Javadoc as long as the JDK's, which says a lot.\n"
        for k in range(25)
    )
    + " */\npublic class {name} {{\n    public int size() {{ return 0; }}\n}}\n"
)


def test_java_package_fill_takes_many_names_not_their_javadoc(tmp_path):
    """A package of twenty classes with long Javadoc, none named yet in the file: the
    tenth most used by the package's files is packed at 1K (the fill shows the names
    the code may use next by their signature, not by a Javadoc each)."""
    folder = "java/util/concurrent"
    package = "java.util.concurrent"
    files = {}
    for i in range(20):
        files[f"{folder}/Kind{i}.java"] = _JAVA_DOCUMENTED.format(package=package, name=f"Kind{i}")
    for u in range(20):
        uses = " ".join(f"Kind{i} k{i};" for i in range(20) if i < 20 - u)
        files[f"{folder}/User{u}.java"] = (
            f"package {package};\n\nclass User{u} {{\n    {uses}\n}}\n"
        )
    root = _write(tmp_path, files)
    text = f"package {package};\n\npublic class RecursiveTask {{\n    "
    packed = _context_at_end(root, f"{folder}/RecursiveTask.java", text)
    assert "public class Kind9 {" in packed.text, packed.text


def test_java_on_demand_import_makes_a_package_visible(tmp_path):
    """`import com.example.code.*;` makes every class of that package visible without
    naming it: the class the files beside this one use most from it is packed before
    anything names it here."""
    files = {}
    for i in range(30):
        files[f"com/example/code/Kind{i}.java"] = _JAVA_DOCUMENTED.format(
            package="com.example.code", name=f"Kind{i}"
        )
    files["com/example/code/Symbol.java"] = _JAVA_DOCUMENTED.format(
        package="com.example.code", name="Symbol"
    )
    for i in range(3):
        files[f"com/example/comp/Pass{i}.java"] = (
            "package com.example.comp;\n\nimport com.example.code.*;\n\n"
            f"class Pass{i} {{\n    Symbol sym;\n    Symbol owner;\n}}\n"
        )
    root = _write(tmp_path, files)
    text = "package com.example.comp;\n\nimport com.example.code.*;\n\npublic class Attr {\n    "
    packed = _context_at_end(root, "com/example/comp/Attr.java", text)
    assert "public class Symbol {" in packed.text, packed.text


def test_java_class_with_a_long_javadoc_comes_as_its_signature(tmp_path):
    """`Spliterator` has 260 lines of Javadoc above it: used near the cursor, it is
    packed at 1K as its signature (the Javadoc alone is over the budget)."""
    doc = "".join(
        f" * Line {k} of a long Javadoc about splitting and traversing.\n" for k in range(120)
    )
    files = {
        "java/util/Spliterator.java": (
            "package java.util;\n\n/**\n" + doc + " */\npublic interface Spliterator<T> {\n"
            "    boolean tryAdvance(Object action);\n}\n"
        ),
    }
    root = _write(tmp_path, files)
    text = (
        "package java.util.stream;\n\nimport java.util.Spliterator;\n\n"
        "class SpinedBuffer {\n    Spliterator<Object> spliterator() {\n        "
    )
    packed = _context_at_end(root, "java/util/stream/SpinedBuffer.java", text)
    assert "public interface Spliterator<T> {" in packed.text, packed.text


def test_names_of_star_imports_come_from_the_first_module_defining_them(tmp_path):
    """`from pkg.a import *` then `from pkg.b import *`: a name both define is `a`'s (as
    a search of the modules in import order finds it), a name only `b` defines is `b`'s."""
    root = _write(
        tmp_path,
        {
            "pkg/__init__.py": "",
            "pkg/a.py": "def helper_one(x):\n    return x + 100\n",
            "pkg/b.py": "def helper_one(x):\n    return x - 200\n\n\ndef helper_two(y):\n    return y\n",
        },
    )
    text = "from pkg.a import *\nfrom pkg.b import *\n\nhelper_one(1)\nhelper_two(2)\n"
    packed = _context_at_end(root, "main.py", text)
    assert "return x + 100" in packed.text, packed.text
    assert "return x - 200" not in packed.text, packed.text
    assert "def helper_two(y):" in packed.text, packed.text
