"""Imports resolve to the right workspace files, per language and per rule."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from context.index import WorkspaceIndex
from context.types import Import


def write(root: Path, files: dict[str, str]) -> None:
    for rel, text in files.items():
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)


@pytest.fixture
def workspace(tmp_path: Path):  # type: ignore[no-untyped-def]
    """Build an index over files written into tmp_path; returns (index, abs)."""
    opened: list[WorkspaceIndex] = []
    root = tmp_path / "ws"
    root.mkdir()

    def make(files: dict[str, str]) -> tuple[WorkspaceIndex, callable]:  # type: ignore[valid-type]
        write(root, files)
        index = WorkspaceIndex([str(root)], cache_dir="")
        index.build()
        opened.append(index)
        real = os.path.realpath(root)
        return index, lambda rel: os.path.join(real, rel)

    yield make
    for index in opened:
        index.close()


def resolve_all(index: WorkspaceIndex, path: str) -> list[list[str]]:
    symbols = index.file(path)
    assert symbols is not None, path
    return [index.resolve_import(path, imp) for imp in symbols.imports]


# --- Python -------------------------------------------------------------------------------


def test_python_relative_imports(workspace) -> None:  # type: ignore[no-untyped-def]
    index, p = workspace(
        {
            "pkg/__init__.py": "",
            "pkg/a.py": "from . import b\nfrom .b import thing\nfrom ..top import T\n",
            "pkg/b.py": "thing = 1\n",
            "pkg/sub/__init__.py": "",
            "pkg/sub/c.py": "from .. import a\nfrom ..b import thing\nfrom . import d\n",
            "pkg/sub/d.py": "",
        }
    )
    assert resolve_all(index, p("pkg/a.py")) == [[p("pkg/b.py")], [p("pkg/b.py")], []]
    assert resolve_all(index, p("pkg/sub/c.py")) == [
        [p("pkg/a.py")],
        [p("pkg/b.py")],
        [p("pkg/sub/d.py")],
    ]


def test_python_absolute_imports_and_src_layout(workspace) -> None:  # type: ignore[no-untyped-def]
    index, p = workspace(
        {
            "src/app/__init__.py": "",
            "src/app/models.py": "class User: ...\n",
            "src/app/views.py": "import app.models\nfrom app.models import User\nimport os\n"
            "from app import models as m\n",
            "tests/test_views.py": "from app.views import render\nimport app\n",
            "scripts/tool.py": "from app.models import User\n",
        }
    )
    assert resolve_all(index, p("src/app/views.py")) == [
        [p("src/app/models.py")],
        [p("src/app/models.py")],
        [],
        [p("src/app/models.py")],
    ]
    assert resolve_all(index, p("tests/test_views.py")) == [
        [p("src/app/views.py")],
        [p("src/app/__init__.py")],
    ]
    assert resolve_all(index, p("scripts/tool.py")) == [[p("src/app/models.py")]]


def test_python_package_reexports_are_followed(workspace) -> None:  # type: ignore[no-untyped-def]
    index, p = workspace(
        {
            "lib/__init__.py": "from .api import Client, VERSION\nfrom .star import *\n",
            "lib/api.py": "from ._impl import Client\nVERSION = '1'\n",
            "lib/_impl.py": "class Client:\n    pass\n",
            "lib/star.py": "def starred():\n    pass\n",
            "main.py": "from lib import Client, VERSION, starred, missing\nimport lib\n",
        }
    )
    assert resolve_all(index, p("main.py")) == [
        [p("lib/_impl.py"), p("lib/api.py"), p("lib/star.py"), p("lib/__init__.py")],
        [p("lib/__init__.py")],
    ]
    one = index.resolve_import(p("main.py"), Import("lib", ("Client",)))
    assert one == [p("lib/_impl.py")]


def test_reexports_are_followed_a_bounded_number_of_files(workspace) -> None:  # type: ignore[no-untyped-def]
    """At most MAX_REEXPORT_DEPTH files deep, counted across the resolutions on the way
    (it used to restart at each hop: a 100-module chain was walked to its end), and each
    (file, name) once per walk (40 modules star-importing each other took 17 s)."""
    from context.imports import MAX_REEXPORT_DEPTH

    chain = {f"r/m{i}.py": f"from .m{i + 1} import val\n" for i in range(30)}
    chain["r/m30.py"] = "val = 1\n"
    chain["r/__init__.py"] = ""
    mesh = {
        f"s/m{i}.py": "".join(f"from .m{k} import *\n" for k in range(40) if k != i)
        for i in range(40)
    }
    mesh["s/__init__.py"] = ""
    index, p = workspace(
        {**chain, **mesh, "main.py": "from r.m0 import val\nfrom s.m0 import nothing\n"}
    )
    val, nothing = index.file(p("main.py")).imports
    assert index.resolve_import(p("main.py"), val) == [p(f"r/m{MAX_REEXPORT_DEPTH}.py")]
    assert index.resolve_import(p("main.py"), nothing) == [p("s/m0.py")]  # fast, not found


def test_python_namespace_package_submodule(workspace) -> None:  # type: ignore[no-untyped-def]
    index, p = workspace(
        {
            "ns/part.py": "X = 1\n",
            "use.py": "from ns import part\nfrom ns.part import X\n",
        }
    )
    assert resolve_all(index, p("use.py")) == [[p("ns/part.py")], [p("ns/part.py")]]


# --- TypeScript / JavaScript ----------------------------------------------------------------


def test_typescript_relative_probing_and_index_files(workspace) -> None:  # type: ignore[no-untyped-def]
    index, p = workspace(
        {
            "src/main.ts": (
                "import { a } from './a';\n"
                "import { B } from './comp';\n"
                "import { c } from './c.js';\n"
                "import { t } from '../types';\n"
                "import { u } from './util';\n"
                "import React from 'react';\n"
            ),
            "src/a.ts": "export const a = 1;\n",
            "src/comp.tsx": "export function B() { return null; }\n",
            "src/c.ts": "export const c = 3;\n",
            "types.d.ts": "export type t = string;\n",
            "src/util/index.ts": "export const u = 1;\n",
        }
    )
    assert resolve_all(index, p("src/main.ts")) == [
        [p("src/a.ts")],
        [p("src/comp.tsx")],
        [p("src/c.ts")],
        [p("types.d.ts")],
        [p("src/util/index.ts")],
        [],
    ]


def test_typescript_tsconfig_paths_base_url_and_extends(workspace) -> None:  # type: ignore[no-untyped-def]
    index, p = workspace(
        {
            "tsconfig.base.json": '{\n  // shared\n  "compilerOptions": {"baseUrl": ".",\n'
            '    "paths": {"@lib/*": ["libs/*/src"], "@core": ["core/index.ts"],},\n'
            "  },\n}\n",
            "tsconfig.json": '{ "extends": "./tsconfig.base", /* no options */ }\n',
            "app/main.ts": "import { x } from '@lib/text';\nimport { core } from '@core';\n"
            "import { s } from 'shared/s';\n",
            "libs/text/src/index.ts": "export const x = 1;\n",
            "core/index.ts": "export const core = 1;\n",
            "shared/s.ts": "export const s = 1;\n",
        }
    )
    assert resolve_all(index, p("app/main.ts")) == [
        [p("libs/text/src/index.ts")],
        [p("core/index.ts")],
        [p("shared/s.ts")],
    ]


def test_tsconfig_paths_without_base_url_are_relative_to_the_config(workspace) -> None:  # type: ignore[no-untyped-def]
    index, p = workspace(
        {
            "web/tsconfig.json": '{"compilerOptions": {"paths": {"~/*": ["./src/*"]}}}',
            "web/src/app.ts": "import { h } from '~/lib/h';\n",
            "web/src/lib/h.ts": "export const h = 1;\n",
        }
    )
    assert resolve_all(index, p("web/src/app.ts")) == [[p("web/src/lib/h.ts")]]


def test_typescript_index_reexports_are_followed(workspace) -> None:  # type: ignore[no-untyped-def]
    index, p = workspace(
        {
            "lib/index.ts": "export { Button } from './button';\nexport * from './icons';\n",
            "lib/button.tsx": "export function Button() { return null; }\n",
            "lib/icons.ts": "export const Icon = 1;\n",
            "app.ts": "import { Button, Icon } from './lib';\nimport * as lib from './lib';\n",
        }
    )
    assert resolve_all(index, p("app.ts")) == [
        [p("lib/button.tsx"), p("lib/icons.ts")],
        [p("lib/index.ts")],
    ]


def test_workspace_package_by_name_and_require(workspace) -> None:  # type: ignore[no-untyped-def]
    index, p = workspace(
        {
            "packages/ui/package.json": '{"name": "@acme/ui", "main": "dist/index.js"}',
            "packages/ui/src/index.ts": "export const ui = 1;\n",
            "packages/ui/src/theme.ts": "export const theme = 1;\n",
            "apps/web/main.js": "const ui = require('@acme/ui');\nconst t = require('@acme/ui/src/theme');\n",
        }
    )
    assert resolve_all(index, p("apps/web/main.js")) == [
        [p("packages/ui/src/index.ts")],
        [p("packages/ui/src/theme.ts")],
    ]


# --- Go -------------------------------------------------------------------------------------


def test_go_module_path_to_package_folder(workspace) -> None:  # type: ignore[no-untyped-def]
    index, p = workspace(
        {
            "go.mod": "module example.com/proj\n\ngo 1.22\n",
            "cmd/app/main.go": 'package main\nimport (\n\t"fmt"\n\t"example.com/proj/internal/geo"\n'
            '\tr "example.com/proj"\n)\n',
            "internal/geo/point.go": "package geo\ntype Point struct{}\n",
            "internal/geo/area.go": "package geo\nfunc Area() {}\n",
            "internal/geo/point_test.go": "package geo\n",
            "root.go": "package proj\n",
        }
    )
    assert resolve_all(index, p("cmd/app/main.go")) == [
        [],
        [p("internal/geo/area.go"), p("internal/geo/point.go")],
        [p("root.go")],
    ]


def test_go_nested_modules_pick_the_longest_module_path(workspace) -> None:  # type: ignore[no-untyped-def]
    index, p = workspace(
        {
            "go.mod": "module example.com/top\n",
            "tools/go.mod": "module example.com/top/tools\n",
            "tools/lint/lint.go": "package lint\n",
            "main.go": 'package main\nimport "example.com/top/tools/lint"\n',
        }
    )
    assert resolve_all(index, p("main.go")) == [[p("tools/lint/lint.go")]]


# --- Rust -----------------------------------------------------------------------------------


RUST_CRATE = {
    "Cargo.toml": '[package]\nname = "shapes"\nversion = "0.1.0"\n',
    "src/lib.rs": "mod geometry;\npub mod util;\nuse crate::geometry::circle::Circle;\n"
    "use self::util::helpers;\n",
    "src/geometry.rs": "pub mod circle;\nuse super::util::clamp;\n",
    "src/geometry/circle.rs": "pub struct Circle;\nuse crate::util::{clamp, helpers::h};\n"
    "use super::super::util;\n",
    "src/util/mod.rs": "pub mod helpers;\npub fn clamp() {}\n",
    "src/util/helpers.rs": "pub fn h() {}\n",
}


def test_rust_mod_declarations(workspace) -> None:  # type: ignore[no-untyped-def]
    index, p = workspace(RUST_CRATE)
    lib = resolve_all(index, p("src/lib.rs"))
    assert lib[0] == [p("src/geometry.rs")]
    assert lib[1] == [p("src/util/mod.rs")]
    assert resolve_all(index, p("src/geometry.rs"))[0] == [p("src/geometry/circle.rs")]
    assert resolve_all(index, p("src/util/mod.rs")) == [[p("src/util/helpers.rs")]]


def test_rust_use_paths(workspace) -> None:  # type: ignore[no-untyped-def]
    index, p = workspace(RUST_CRATE)
    lib = resolve_all(index, p("src/lib.rs"))
    assert lib[2] == [p("src/geometry/circle.rs")]  # crate::
    assert lib[3] == [p("src/util/helpers.rs")]  # self::
    assert resolve_all(index, p("src/geometry.rs"))[1] == [p("src/util/mod.rs")]  # super::
    circle = resolve_all(index, p("src/geometry/circle.rs"))
    assert circle[0] == [p("src/util/mod.rs")]  # crate::util::{clamp}
    assert circle[1] == [p("src/util/helpers.rs")]  # crate::util::helpers::h
    assert circle[2] == [p("src/util/mod.rs")]  # super::super::util


def test_rust_other_workspace_crate(workspace) -> None:  # type: ignore[no-untyped-def]
    index, p = workspace(
        {
            "core-lib/Cargo.toml": '[package]\nname = "core-lib"\n',
            "core-lib/src/lib.rs": "pub mod model;\n",
            "core-lib/src/model.rs": "pub struct Model;\n",
            "app/Cargo.toml": '[package]\nname = "app"\n[dependencies]\ncore-lib = { path = "../core-lib" }\n',
            "app/src/main.rs": "use core_lib::model::Model;\nuse serde::Serialize;\n",
        }
    )
    assert resolve_all(index, p("app/src/main.rs")) == [[p("core-lib/src/model.rs")], []]


# --- Java, C/C++, Lua ------------------------------------------------------------------------


def test_java_imports(workspace) -> None:  # type: ignore[no-untyped-def]
    index, p = workspace(
        {
            "src/main/java/com/acme/app/Main.java": "package com.acme.app;\n"
            "import com.acme.model.User;\nimport static com.acme.util.Strings.trim;\n"
            "import com.acme.model.*;\nimport java.util.List;\n",
            "src/main/java/com/acme/model/User.java": "package com.acme.model;\npublic class User {}\n",
            "src/main/java/com/acme/model/Role.java": "package com.acme.model;\npublic enum Role {}\n",
            "src/main/java/com/acme/util/Strings.java": "package com.acme.util;\nclass Strings {}\n",
        }
    )
    base = "src/main/java/com/acme/"
    assert resolve_all(index, p(base + "app/Main.java")) == [
        [p(base + "model/User.java")],
        [p(base + "util/Strings.java")],
        [p(base + "model/Role.java"), p(base + "model/User.java")],
        [],
    ]


def test_c_includes(workspace) -> None:  # type: ignore[no-untyped-def]
    index, p = workspace(
        {
            "src/main.c": '#include "util.h"\n#include "net/socket.h"\n#include <stdio.h>\n'
            "#include <proj/config.h>\n",
            "src/util.h": "int util(void);\n",
            "include/net/socket.h": "int sock(void);\n",
            "include/proj/config.h": "#define X 1\n",
        }
    )
    assert resolve_all(index, p("src/main.c")) == [
        [p("src/util.h")],
        [p("include/net/socket.h")],
        [],
        [p("include/proj/config.h")],
    ]


def test_lua_require(workspace) -> None:  # type: ignore[no-untyped-def]
    index, p = workspace(
        {
            "lua/plugin/init.lua": 'local cfg = require("plugin.config")\nlocal u = require("plugin.ui")\n'
            'local v = require("vim.lsp")\n',
            "lua/plugin/config.lua": "return {}\n",
            "lua/plugin/ui/init.lua": "return {}\n",
        }
    )
    assert resolve_all(index, p("lua/plugin/init.lua")) == [
        [p("lua/plugin/config.lua")],
        [p("lua/plugin/ui/init.lua")],
        [],
    ]


def test_importers_of_is_the_reverse_graph(workspace) -> None:  # type: ignore[no-untyped-def]
    index, p = workspace(
        {
            "pkg/__init__.py": "",
            "pkg/core.py": "X = 1\n",
            "pkg/a.py": "from .core import X\n",
            "pkg/b.py": "from pkg import core\n",
            "pkg/c.py": "import os\n",
        }
    )
    assert index.importers_of(p("pkg/core.py")) == [p("pkg/a.py"), p("pkg/b.py")]
    index.update_document(p("pkg/c.py"), "from pkg.core import X\n")
    assert index.importers_of(p("pkg/core.py")) == [p("pkg/a.py"), p("pkg/b.py"), p("pkg/c.py")]


def test_imports_of_is_kept_until_the_file_changes(workspace) -> None:  # type: ignore[no-untyped-def]
    index, p = workspace(
        {
            "include/api.h": '#include "types.h"\n',
            "include/types.h": "#define T int\n",
            "include/other.h": "#define O 1\n",
            "src/main.c": '#include "../include/api.h"\n',
        }
    )
    assert index.imports_of(p("include/api.h")) == {p("include/types.h")}
    assert index.imports_of(p("src/main.c")) == {p("include/api.h")}
    # The edges are the reverse graph's: both agree, and an edit moves them.
    assert index.importers_of(p("include/types.h")) == [p("include/api.h")]
    index.update_document(p("include/api.h"), '#include "other.h"\n')
    assert index.imports_of(p("include/api.h")) == {p("include/other.h")}
    assert index.importers_of(p("include/types.h")) == []
