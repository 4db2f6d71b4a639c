"""Rust names that reach a file without a `use` of its own, or through a module a `use`
binds: the miss classes of issue 16's Rust repositories (bench/retrieval_bench.py).

- `macro_rules!` macros by textual scope: a macro defined in a parent module above the
  file's `mod` line, or brought there by a `#[macro_use] mod macros;` or an
  `include!("macros.rs")`, is visible in the file though nothing imports it (tokio's
  `cfg_net_unix!`, regex's tests' `text!`);
- `#[macro_export]` macros are exported (at the crate root);
- a module bound by `use crate::runtime::context;`, used as `context::current_id()`;
- `mod support { pub mod signal; }` in a test crate: `tests/support/signal.rs`.

Each workspace is built in `tmp_path`; the cursor is at the end of the text given (the
rest of the file not written yet), and the wanted definition must be packed at a
1K-token budget among many other definitions that compete for it.
"""

from __future__ import annotations

import os

from context.index import WorkspaceIndex
from context.types import Import
from tests.context.recall_support import context_at_end as _context_at_end
from tests.context.recall_support import write_tree as _write


def _index(root: str):
    index = WorkspaceIndex([root], cache_dir="")
    index.build()
    return index


_RS_FN = (
    "/// Step {i} of the work, documented at length so that it costs tokens in the\n"
    "/// prompt like a real function of a real crate would.\n"
    "pub fn {name}(value: u32) -> u32 {{\n    value + {i}\n}}\n\n"
)
_RS_MACRO = (
    "/// Compiles the items given only with feature number {i}, documented at length\n"
    "/// so that it costs tokens in the prompt like a real macro would.\n"
    "macro_rules! {name} {{\n"
    "    ($($item:item)*) => {{\n"
    '        $( #[cfg(feature = "f{i}")] $item )*\n'
    "    }}\n}}\n\n"
)
_RS_BODY = "".join(f"    let x{i} = x{i - 1} + 1;\n" for i in range(1, 40))


def _filler(prefix: str, n: int, fmt: str) -> str:
    return "".join(fmt.format(name=f"{prefix}{i}", i=i) for i in range(n))


def _crate(macros: str) -> dict[str, str]:
    """A crate whose root brings in a macros module with `#[macro_use]`, then declares
    `net` (three files) and `steps` (sixty functions that compete for the budget)."""
    return {
        "Cargo.toml": '[package]\nname = "app"\nversion = "0.1.0"\n',
        "src/lib.rs": "#[macro_use]\nmod macros;\n\npub mod steps;\npub mod net;\n",
        "src/macros.rs": macros,
        "src/steps.rs": _filler("step", 60, _RS_FN),
        "src/net/mod.rs": "pub mod tcp;\npub mod udp;\npub mod unix;\n",
        "src/net/tcp.rs": (
            "use crate::steps::step1;\n\ncfg_net! {\n    pub struct TcpStream {\n"
            "        pub fd: u32,\n    }\n}\n"
        ),
        "src/net/udp.rs": (
            "use crate::steps::step2;\n\ncfg_net! {\n    pub struct UdpSocket {\n"
            "        pub fd: u32,\n    }\n}\n"
        ),
    }


_CFG_NET = (
    "/// Compiles the items given only with the `net` feature.\n"
    "macro_rules! cfg_net {\n"
    "    ($($item:item)*) => {\n"
    '        $( #[cfg(feature = "net")] $item )*\n'
    "    }\n}\n\n"
)


def test_rust_macro_use_module_macros_reach_every_module(tmp_path):
    """`#[macro_use] mod macros;` at the crate root: its `cfg_net!` is in scope in
    `net/unix.rs` without a `use`, and the files beside it use it: it comes first
    among the forty macros and sixty functions that compete for the budget."""
    root = _write(tmp_path, _crate(_filler("cfg_feature", 40, _RS_MACRO) + _CFG_NET))
    text = "use crate::steps::step3;\n\n"
    packed = _context_at_end(root, "src/net/unix.rs", text)
    assert "macro_rules! cfg_net {" in packed.text, packed.text


def test_rust_macro_in_scope_is_the_one_used(tmp_path):
    """`check!`, used far above the cursor, is defined by five crates' tests: the one
    in the file's textual scope (its crate's `#[macro_use]` module) is packed."""
    files = _crate(
        _CFG_NET + "macro_rules! check {\n    ($e:expr) => {\n        assert!($e)\n    };\n}\n"
    )
    for i in range(4):
        files[f"other{i}/Cargo.toml"] = f'[package]\nname = "other{i}"\nversion = "0.1.0"\n'
        files[f"other{i}/src/lib.rs"] = (
            f"macro_rules! check {{\n    ($e:expr) => {{\n        let _ = $e + {i};\n    }};\n}}\n"
        )
    root = _write(tmp_path, files)
    text = (
        "fn setup() -> u32 {\n    check!(1 > 0);\n    0\n}\n\n"
        "fn second() -> u32 {\n    let x0 = 0;\n" + _RS_BODY + "    "
    )
    packed = _context_at_end(root, "src/net/unix.rs", text)
    assert "        assert!($e)" in packed.text, packed.text


def test_rust_included_macros_reach_the_modules_declared_after(tmp_path):
    """A test crate's root `include!`s `macros_str.rs`, then declares `mod api_str;`
    (a module beside it in `tests/`, not a crate of its own): `text!` is in scope in
    `api_str.rs`, and the other modules use it."""
    files = {
        "Cargo.toml": '[package]\nname = "re"\nversion = "0.1.0"\n',
        "src/lib.rs": "pub mod steps;\n",
        "src/steps.rs": _filler("step", 60, _RS_FN),
        "tests/test_default.rs": (
            'include!("macros_str.rs");\ninclude!("macros.rs");\n\n'
            "mod api;\nmod api_str;\nmod crazy;\n"
        ),
        "tests/macros_str.rs": (
            "macro_rules! text { ($text:expr) => { $text } }\n"
            "macro_rules! t { ($re:expr) => { $re } }\n"
        ),
        "tests/macros.rs": _filler("mat", 40, _RS_MACRO),
        "tests/api.rs": 'fn one() {\n    let t = text!("a");\n}\n',
        "tests/crazy.rs": 'fn two() {\n    let t = text!("b");\n}\n',
    }
    root = _write(tmp_path, files)
    text = "use re::steps::step1;\n\n#[test]\nfn captures() {\n    "
    packed = _context_at_end(root, "tests/api_str.rs", text)
    assert "macro_rules! text { ($text:expr) => { $text } }" in packed.text, packed.text


def test_rust_macro_export_is_exported(tmp_path):
    """`#[macro_export]` puts a macro at the crate root: it is an exported definition
    (a plain `macro_rules!` is not)."""
    root = _write(
        tmp_path,
        {
            "Cargo.toml": '[package]\nname = "app"\nversion = "0.1.0"\n',
            "src/lib.rs": (
                '#[macro_export]\n#[cfg_attr(docsrs, doc(cfg(feature = "rt")))]\n'
                "macro_rules! task_local {\n    () => {};\n}\n\n"
                "macro_rules! private_helper {\n    () => {};\n}\n"
            ),
        },
    )
    index = _index(root)
    fs = index.file(os.path.join(root, "src/lib.rs"))
    assert fs is not None
    exported = {d.name: d.exported for d in fs.definitions}
    assert exported == {"task_local": True, "private_helper": False}


def test_rust_module_bound_by_a_use_heads_a_path(tmp_path):
    """`use crate::runtime::context;` binds the module: `context::current_id()`, used
    far above the cursor, is packed (among the sixty functions of `context`)."""
    files = {
        "Cargo.toml": '[package]\nname = "app"\nversion = "0.1.0"\n',
        "src/lib.rs": "pub mod runtime;\n",
        "src/runtime/mod.rs": "pub mod context;\npub mod task;\n",
        "src/runtime/context.rs": _filler("step", 60, _RS_FN)
        + "/// The id of the task being run, if any.\n"
        "pub(crate) fn current_id() -> Option<u64> {\n    None\n}\n",
    }
    root = _write(tmp_path, files)
    text = (
        "use crate::runtime::context;\n\n"
        "pub fn id() -> u64 {\n    context::current_id().unwrap()\n}\n\n"
        "fn second() -> u32 {\n    let x0 = 0;\n" + _RS_BODY + "    "
    )
    packed = _context_at_end(root, "src/runtime/task.rs", text)
    assert "pub(crate) fn current_id() -> Option<u64> {" in packed.text, packed.text


def test_rust_module_declared_inside_an_inline_module_of_a_test(tmp_path):
    """A test crate's `mod support { pub mod signal; }` is `tests/support/signal.rs`:
    `use support::signal::send_signal;` finds it (four other crates' tests define a
    `send_signal` too: found by name, it would be too ambiguous to pack)."""
    files = {
        "Cargo.toml": '[package]\nname = "app"\nversion = "0.1.0"\n',
        "src/lib.rs": "pub mod steps;\n",
        "src/steps.rs": _filler("step", 60, _RS_FN),
        "tests/support/signal.rs": _filler("raise", 60, _RS_FN)
        + (
            "/// Sends `signal` to this process.\n"
            "pub fn send_signal(signal: i32) {\n    let _ = signal;\n}\n"
        ),
    }
    for i in range(4):
        files[f"other{i}/Cargo.toml"] = f'[package]\nname = "other{i}"\nversion = "0.1.0"\n'
        files[f"other{i}/tests/support/signal.rs"] = (
            f"pub fn send_signal(signal: i32) -> i32 {{\n    signal + {i}\n}}\n"
        )
    # The crate's other tests use thirty of its functions: they lead the fill.
    calls = "".join(f"    app::steps::step{i}(1);\n" for i in range(30))
    for i in range(3):
        files[f"tests/t{i}.rs"] = f"#[test]\nfn t{i}() {{\n{calls}}}\n"
    root = _write(tmp_path, files)
    text = (
        "mod support {\n    pub mod signal;\n}\n"
        "use support::signal::send_signal;\n\n"
        "#[test]\nfn drops() {\n    let x0 = 0;\n    send_signal(x0);\n    "
    )
    packed = _context_at_end(root, "tests/signal_drop.rs", text)
    assert "pub fn send_signal(signal: i32) {" in packed.text, packed.text
    index = _index(root)
    test = os.path.join(root, "tests/signal_drop.rs")
    imp = Import("support::signal", ("send_signal",), kind="use")
    assert index.resolve_import(test, imp) == [os.path.join(root, "tests/support/signal.rs")]


def _reexporting_crate() -> dict[str, str]:
    """`spawn` is defined three modules away from the crate root that re-exports it:
    `lib.rs` `pub use task::spawn;` -> `task/mod.rs` `pub use self::spawn_impl::*;`
    -> `task/spawn_impl.rs` `pub use crate::runtime::spawn;` -> `runtime/mod.rs`
    `pub use self::handle::spawn;` -> `runtime/handle.rs`."""
    return {
        "Cargo.toml": '[workspace]\nmembers = ["core", "cli"]\n',
        "core/Cargo.toml": '[package]\nname = "app-core"\nversion = "0.1.0"\n',
        "core/src/lib.rs": "pub mod steps;\npub mod task;\nmod runtime;\n\npub use task::spawn;\n",
        "core/src/steps.rs": _filler("step", 60, _RS_FN),
        "core/src/task/mod.rs": "mod spawn_impl;\n\npub use self::spawn_impl::*;\n",
        "core/src/task/spawn_impl.rs": "pub use crate::runtime::spawn;\n",
        "core/src/runtime/mod.rs": "mod handle;\n\npub use self::handle::spawn;\n",
        "core/src/runtime/handle.rs": (
            "/// Runs `task` on the runtime.\npub fn spawn(task: u32) -> u32 {\n    task\n}\n"
        ),
        "cli/Cargo.toml": '[package]\nname = "app-cli"\nversion = "0.1.0"\n',
        "cli/src/main.rs": "fn main() {}\n",
    }


def test_rust_path_through_a_chain_of_reexports(tmp_path):
    """`app_core::spawn(1)`, used far above the cursor, reaches the function through
    four `pub use` re-exports (two of them globs)."""
    root = _write(tmp_path, _reexporting_crate())
    text = (
        "use app_core::steps::*;\n\n"
        "fn setup() -> u32 {\n    app_core::spawn(1)\n}\n\n"
        "fn second() -> u32 {\n    let x0 = 0;\n" + _RS_BODY + "    "
    )
    packed = _context_at_end(root, "cli/src/main.rs", text)
    assert "pub fn spawn(task: u32) -> u32 {" in packed.text, packed.text


def test_rust_use_through_a_chain_of_reexports(tmp_path):
    """`use app_core::spawn;` resolves to the file that defines it, four re-exports
    away."""
    root = _write(tmp_path, _reexporting_crate())
    index = _index(root)
    main = os.path.join(root, "cli/src/main.rs")
    imp = Import("app_core", ("spawn",), kind="use")
    assert index.resolve_import(main, imp) == [os.path.join(root, "core/src/runtime/handle.rs")]


def test_rust_name_used_from_the_standard_library_is_not_looked_up_by_name(tmp_path):
    """`use std::io::Read;` binds the standard library's `Read`: the tree's own `Read`
    (a big future struct, as in tokio) is not what the code near the cursor uses, and
    must not take the budget from `checksum`, a function of the crate used there."""
    fields = "".join(
        f"    /// Field {i} of the future, documented at length so that it costs\n"
        f"    /// tokens in the prompt like a real field would.\n    pub f{i}: u32,\n"
        for i in range(30)
    )
    files = {
        "Cargo.toml": '[package]\nname = "app"\nversion = "0.1.0"\n',
        "src/lib.rs": "pub mod io;\npub mod util;\npub mod worker;\n",
        "src/io/mod.rs": "pub mod read;\n",
        "src/io/read.rs": "/// A future that reads.\npub struct Read {\n" + fields + "}\n",
        "src/util.rs": _filler("step", 30, _RS_FN) + "/// The checksum of the bytes given.\n"
        "pub fn checksum(bytes: &[u8]) -> u32 {\n    bytes.len() as u32\n}\n",
    }
    root = _write(tmp_path, files)
    text = (
        "use std::io::Read;\n\n"
        "pub fn sum(bytes: &[u8]) -> u32 {\n    checksum(bytes)\n}\n\n"
        "pub fn load<R: Read>(mut r: R) -> Vec<u8> {\n    let mut buf = Vec::new();\n"
        "    r.read_to_end(&mut buf).unwrap();\n    "
    )
    packed = _context_at_end(root, "src/worker.rs", text)
    assert "pub fn checksum(bytes: &[u8]) -> u32 {" in packed.text, packed.text
    assert "pub struct Read {" not in packed.text, packed.text


def test_rust_exported_macro_of_the_crate_reaches_its_tests(tmp_path):
    """`#[macro_export]` puts a macro at its crate's root wherever it is defined: a test
    crate uses it as `app::task_local!` (tokio's tests), though no module the root
    declares defines it there. The other tests use it: it is packed at 1K for a test
    that does not name it yet, among the crate's sixty functions."""
    use = (
        "app::task_local! {\n    static ID: u32;\n}\n\n#[test]\nfn t() {\n    ID.with(|_| ());\n}\n"
    )
    files = {
        "Cargo.toml": '[package]\nname = "app"\nversion = "0.1.0"\n',
        "src/lib.rs": "pub mod steps;\npub mod task;\n",
        "src/steps.rs": _filler("step", 60, _RS_FN),
        "src/task/mod.rs": "mod local;\npub use local::LocalKey;\n",
        "src/task/local.rs": (
            "/// Declares task-local keys.\n#[macro_export]\nmacro_rules! task_local {\n"
            "    ($(static $name:ident: $t:ty;)*) => {};\n}\n\n"
            "/// A key for task-local data.\npub struct LocalKey {\n    pub id: u32,\n}\n"
        ),
        "tests/first.rs": use,
        "tests/second.rs": use,
    }
    root = _write(tmp_path, files)
    text = "use app::steps::step1;\n\n#[test]\nfn third() {\n    step1(1);\n}\n\n"
    packed = _context_at_end(root, "tests/third.rs", text)
    assert "macro_rules! task_local {" in packed.text, packed.text


def test_rust_imported_type_named_only_by_its_use_line_gets_no_member_outline(tmp_path):
    """Right below a `use` block, an imported type is near the cursor only by its import
    line: its header is packed, not 40 member signatures that would take the budget
    from `spawn`, the crate function the folder's tests use (tokio's `tcp_echo.rs`)."""
    methods = "".join(
        f"    /// Operation {i} of the stream, documented at length so that it costs\n"
        f"    /// tokens in the prompt like a real method would.\n"
        f"    pub fn operation_number_{i}(&self, first_value: u32, second_value: u32,"
        f" third_value: u32) -> Result<u32, std::io::Error> {{\n        Ok({i})\n    }}\n\n"
        for i in range(40)
    )
    use = "#[test]\nfn t() {\n    app::spawn(async {});\n}\n"
    files = {
        "Cargo.toml": '[package]\nname = "app"\nversion = "0.1.0"\n',
        "src/lib.rs": (
            "pub mod net;\n\n/// Spawns a task on the runtime.\n"
            "pub fn spawn<F>(future: F) -> u32 {\n    0\n}\n"
        ),
        "src/net.rs": "/// A TCP stream.\npub struct TcpStream {\n    fd: u32,\n}\n\n"
        "impl TcpStream {\n" + methods + "}\n",
        "tests/first.rs": use,
        "tests/second.rs": use,
    }
    root = _write(tmp_path, files)
    text = "use app::net::{self, TcpStream};\n\n#[test]\nfn echo() {\n    "
    packed = _context_at_end(root, "tests/echo.rs", text)
    assert "pub fn spawn<F>(future: F) -> u32 {" in packed.text, packed.text
    assert "pub struct TcpStream {" in packed.text, packed.text
