"""Definitions and imports of TypeScript, TSX and JavaScript files."""

from __future__ import annotations

from context.languages import language_for_path
from context.symbols import file_symbols
from context.types import Definition, FileSymbols

TS = """\
import { a, b as c } from './x';
import Def from "../y";
import * as ns from '@app/z';
export { re, other as renamed } from './re';
export * from './all';

/** Adds numbers.
 * Twice.
 */
export function add(x: number, y: number): number {
  return x + y;
}

export class Box<T> extends Base<T> implements Sized, Named {
  private secret(): void {}
  get(): T {
    return this.v;
  }
  #hidden() {}
}

export interface Sized extends Measured {
  size(): number;
}

export type Alias = string | number;
export enum Color { Red, Green }
export const handler = async (req: Request) => {
  return req;
};
const internal = 3;
let counter = 0;
export abstract class Repo {
  abstract find(id: string): void;
}
export namespace Util {
  export function helper() {}
}
export declare function declared(x: number): void;
function notExported() {
  function nested() {}
  const lazy = await import('./lazy');
}
"""


def parse(source: str, path: str) -> FileSymbols:
    language = language_for_path(path)
    assert language is not None
    return file_symbols(path, source.encode(), language)


def by_name(fs: FileSymbols) -> dict[tuple[str, str], Definition]:
    return {(d.name, d.parent): d for d in fs.definitions}


def test_typescript_definitions_and_spans() -> None:
    defs = by_name(parse(TS, "/w/mod.ts"))
    add = defs[("add", "")]
    assert (add.kind, add.start_line, add.end_line, add.signature_end_line) == (
        "function",
        9,
        11,
        9,
    )
    assert add.doc == "Adds numbers.\nTwice."
    assert add.exported
    box = defs[("Box", "")]
    assert (box.kind, box.start_line, box.end_line) == ("class", 13, 19)
    assert box.bases == ("Base", "Sized", "Named")
    assert defs[("get", "Box")].kind == "method"
    assert (defs[("get", "Box")].start_line, defs[("get", "Box")].end_line) == (15, 17)
    assert not defs[("secret", "Box")].exported
    assert not defs[("#hidden", "Box")].exported
    sized = defs[("Sized", "")]
    assert (sized.kind, sized.bases) == ("interface", ("Measured",))
    assert defs[("size", "Sized")].kind == "method"
    assert defs[("Alias", "")].kind == "type"
    assert defs[("Color", "")].kind == "enum"
    handler = defs[("handler", "")]
    assert (handler.kind, handler.start_line, handler.end_line) == ("function", 27, 29)
    assert defs[("internal", "")].kind == "constant"
    assert not defs[("internal", "")].exported
    assert defs[("counter", "")].kind == "variable"
    assert defs[("Repo", "")].kind == "class"
    assert defs[("find", "Repo")].kind == "method"
    assert defs[("Util", "")].kind == "module"
    assert ("helper", "") in defs
    assert defs[("declared", "")].exported
    assert not defs[("notExported", "")].exported
    assert ("nested", "") not in defs


def test_typescript_imports_reexports_and_dynamic_imports() -> None:
    imports = parse(TS, "/w/mod.ts").imports
    assert [(i.module, i.names, i.alias, i.local_names, i.kind) for i in imports] == [
        ("./x", ("a", "b"), "", ("a", "c"), ""),
        ("../y", ("Def",), "", (), ""),  # a default import keeps its local name
        ("@app/z", (), "ns", (), ""),
        ("./re", ("re", "other"), "", ("re", "renamed"), "reexport"),
        ("./all", ("*",), "", (), "reexport"),
        ("./lazy", (), "lazy", (), "dynamic"),
    ]


def test_tsx_components() -> None:
    source = """\
import React from 'react';
export function App(props: Props) {
  return <div className="x">{props.children}</div>;
}
export const Button = ({ label }: { label: string }) => <button>{label}</button>;
"""
    fs = parse(source, "/w/App.tsx")
    assert fs.language == "tsx"
    defs = by_name(fs)
    assert (defs[("App", "")].kind, defs[("App", "")].end_line) == ("function", 3)
    assert defs[("Button", "")].kind == "function"


def test_javascript_commonjs_and_classes() -> None:
    source = """\
const path = require('path');
const { join, resolve } = require("./util");
// Makes widgets.
class Widget extends EventEmitter {
  render() { return 1; }
}
function make() { return new Widget(); }
module.exports = { make };
"""
    fs = parse(source, "/w/lib.cjs")
    assert fs.language == "javascript"
    defs = by_name(fs)
    assert defs[("Widget", "")].doc == "Makes widgets."
    assert defs[("Widget", "")].bases == ("EventEmitter",)
    assert defs[("render", "Widget")].kind == "method"
    assert defs[("make", "")].exported  # no export statements: CommonJS, anything may be used
    assert [(i.module, i.names, i.alias, i.kind) for i in fs.imports] == [
        ("path", (), "path", "require"),
        ("./util", ("join", "resolve"), "", "require"),
    ]


def test_jsx_and_mjs_extensions() -> None:
    assert language_for_path("/w/a.jsx") == "javascript"
    assert language_for_path("/w/a.mjs") == "javascript"
    assert language_for_path("/w/a.d.ts") == "typescript"
    assert language_for_path("/w/a.min.js") is None
    fs = parse("export default function Page() { return <main/>; }\n", "/w/page.jsx")
    assert [d.name for d in fs.definitions] == ["Page"]
