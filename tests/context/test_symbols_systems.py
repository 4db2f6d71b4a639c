"""Definitions and imports of Go, Rust, Java, C, C++ and Lua files."""

from __future__ import annotations

from context.languages import language_for_path
from context.symbols import file_symbols
from context.types import Definition, FileSymbols


def parse(source: str, path: str) -> FileSymbols:
    language = language_for_path(path)
    assert language is not None
    return file_symbols(path, source.encode(), language)


def by_name(fs: FileSymbols) -> dict[tuple[str, str, str], Definition]:
    return {(d.name, d.parent, d.kind): d for d in fs.definitions}


def spans(fs: FileSymbols) -> set[tuple[str, str, str, int, int]]:
    return {(d.name, d.kind, d.parent, d.start_line, d.end_line) for d in fs.definitions}


GO = """\
package shapes

import (
	"fmt"
	geo "example.com/proj/internal/geo"
)

// Shape is anything with an area.
type Shape interface {
	Area() float64
}

// Square has sides.
type Square struct {
	geo.Base
	Side float64
}

type Alias = int

const Pi = 3.14

var registry = map[string]Shape{}

func (s *Square) Area() float64 {
	return s.Side * s.Side
}

func New[T any](side float64) *Square {
	helper := func() {}
	_ = helper
	return &Square{Side: side}
}
"""


def test_go() -> None:
    fs = parse(GO, "/w/shapes.go")
    assert spans(fs) == {
        ("Shape", "interface", "", 8, 10),
        ("Square", "struct", "", 13, 16),
        ("Alias", "type", "", 18, 18),
        ("Pi", "constant", "", 20, 20),
        ("registry", "variable", "", 22, 22),
        ("Area", "method", "Square", 24, 26),
        ("New", "function", "", 28, 32),
    }
    defs = by_name(fs)
    assert defs[("Square", "", "struct")].doc == "Square has sides."
    assert defs[("Square", "", "struct")].signature_end_line == 13
    assert not defs[("registry", "", "variable")].exported
    assert defs[("New", "", "function")].exported
    assert [(i.module, i.alias) for i in fs.imports] == [
        ("fmt", ""),
        ("example.com/proj/internal/geo", "geo"),
    ]


RUST = """\
mod shapes;
pub mod util {
    pub fn clamp(x: i32) -> i32 { x }
}
use crate::shapes::{Circle, square::Square as Sq};
use super::parent_item;
use std::collections::HashMap;

/// A point in space.
/// Two lines.
#[derive(Debug, Clone)]
pub struct Point {
    x: f64,
}

enum Kind { A, B }

pub trait Area: Shape {
    fn area(&self) -> f64;
    fn double(&self) -> f64 { self.area() * 2.0 }
}

impl Area for Point {
    fn area(&self) -> f64 {
        0.0
    }
}

impl Point {
    pub fn new() -> Self { Point { x: 0.0 } }
    fn private_helper(&self) {}
}

pub const ORIGIN: Point = Point { x: 0.0 };
type Pair = (i32, i32);
macro_rules! square { ($x:expr) => { $x * $x }; }
"""


def test_rust() -> None:
    fs = parse(RUST, "/w/src/lib.rs")
    got = spans(fs)
    assert {
        ("util", "module", "", 1, 3),
        ("clamp", "function", "", 2, 2),
        ("Point", "struct", "", 11, 13),
        ("Kind", "enum", "", 15, 15),
        ("Area", "trait", "", 17, 20),
        ("area", "method", "Area", 18, 18),
        ("double", "method", "Area", 19, 19),
        ("Point", "impl", "", 22, 26),
        ("area", "method", "Point", 23, 25),
        ("Point", "impl", "", 28, 31),
        ("new", "method", "Point", 29, 29),
        ("private_helper", "method", "Point", 30, 30),
        ("ORIGIN", "constant", "", 33, 33),
        ("Pair", "type", "", 34, 34),
        ("square", "function", "", 35, 35),
    } == got
    defs = by_name(fs)
    assert defs[("Point", "", "struct")].doc == "A point in space.\nTwo lines."  # past #[derive]
    assert defs[("Area", "", "trait")].bases == ("Shape",)
    assert defs[("area", "Point", "method")].exported  # a trait impl's method
    assert not defs[("private_helper", "Point", "method")].exported
    assert not defs[("Kind", "", "enum")].exported
    assert [(i.module, i.names, i.local_names, i.kind) for i in fs.imports] == [
        ("shapes", (), (), "mod"),
        ("crate::shapes", ("Circle",), (), "use"),
        ("crate::shapes::square", ("Square",), ("Sq",), "use"),
        ("super", ("parent_item",), (), "use"),
        ("std::collections", ("HashMap",), (), "use"),
    ]


JAVA = """\
package com.example.shapes;

import com.example.geo.Point;
import static com.example.util.Maths.clamp;
import java.util.*;

/** A circle. */
public class Circle extends Shape implements Comparable<Circle>, Serializable {
    public static final double PI = 3.14;
    private int radius;

    public Circle(int radius) {
        this.radius = radius;
    }

    private double area() {
        return PI * radius * radius;
    }

    interface Visitor {
        void visit(Circle c);
    }
}

enum Color { RED }
"""


def test_java() -> None:
    fs = parse(JAVA, "/w/src/com/example/shapes/Circle.java")
    assert spans(fs) == {
        ("Circle", "class", "", 7, 22),
        ("PI", "constant", "Circle", 8, 8),
        ("Circle", "method", "Circle", 11, 13),
        ("area", "method", "Circle", 15, 17),
        ("Visitor", "interface", "Circle", 19, 21),
        ("visit", "method", "Visitor", 20, 20),
        ("Color", "enum", "", 24, 24),
    }
    defs = by_name(fs)
    assert defs[("Circle", "", "class")].doc == "A circle."
    assert defs[("Circle", "", "class")].bases == ("Shape", "Comparable<Circle>", "Serializable")
    assert not defs[("area", "Circle", "method")].exported
    assert [(i.module, i.names) for i in fs.imports] == [
        ("com.example.geo", ("Point",)),
        ("com.example.util.Maths", ("clamp",)),
        ("java.util", ("*",)),
    ]


C_HEADER = """\
#ifndef SHAPES_H
#define SHAPES_H
#include "geo/point.h"
#include <stdio.h>

/* A rectangle. */
typedef struct rect {
    int w, h;
} rect_t;

struct circle { int r; };

enum color { RED, GREEN };

#define AREA(r) ((r).w * (r).h)
#define MAX_SHAPES 16

int area(const rect_t *r);
char *describe(int kind);
static int internal(void) { return 0; }
#endif
"""


def test_c_header() -> None:
    fs = parse(C_HEADER, "/w/include/shapes.h")
    assert fs.language == "c"
    got = spans(fs)
    assert {
        ("rect", "struct", "", 6, 8),
        ("rect_t", "type", "", 6, 8),
        ("circle", "struct", "", 10, 10),
        ("color", "enum", "", 12, 12),
        ("AREA", "function", "", 14, 14),
        ("MAX_SHAPES", "constant", "", 15, 15),
        ("area", "function", "", 17, 17),
        ("describe", "function", "", 18, 18),
        ("internal", "function", "", 19, 19),
    } <= got
    defs = by_name(fs)
    assert defs[("rect_t", "", "type")].doc == "A rectangle."
    assert not defs[("internal", "", "function")].exported
    assert [(i.module, i.kind) for i in fs.imports] == [
        ("geo/point.h", "include"),
        ("<stdio.h>", "include"),
    ]


CPP = """\
#include "shape.hpp"

namespace geo {

// A circle.
class Circle : public Shape, private Noncopyable {
 public:
  explicit Circle(double r);
  double area() const override { return r_ * r_; }
 private:
  double r_;
};

template <typename T>
T twice(T x) { return x + x; }

}  // namespace geo

double geo::Circle::perimeter() const { return 2 * r_; }
"""


def test_cpp() -> None:
    fs = parse(CPP, "/w/src/circle.cpp")
    assert fs.language == "cpp"
    got = spans(fs)
    assert {
        ("geo", "module", "", 2, 16),
        ("Circle", "class", "", 5, 11),
        ("Circle", "method", "Circle", 7, 7),
        ("area", "method", "Circle", 8, 8),
        ("twice", "function", "", 14, 14),
        ("perimeter", "method", "Circle", 18, 18),
    } <= got
    circle = by_name(fs)[("Circle", "", "class")]
    assert circle.doc == "A circle."
    assert circle.bases == ("Shape", "Noncopyable")


def test_cpp_header_detected_from_content() -> None:
    fs = parse("#pragma once\nnamespace x {\nclass A { void f(); };\n}\n", "/w/a.h")
    assert fs.language == "cpp"
    assert ("A", "class", "", 2, 2) in spans(fs)


LUA = """\
local util = require("app.util")
local json = require "dkjson"
local M = {}

--- Greets someone.
-- Politely.
function M.greet(name)
  return "hi " .. name
end

function M:method() end

local function private_helper() end

function global_fn() end

M.handler = function(event)
  return event
end

return M
"""


def test_lua() -> None:
    fs = parse(LUA, "/w/lua/app/init.lua")
    assert spans(fs) == {
        ("greet", "function", "M", 6, 8),
        ("method", "method", "M", 10, 10),
        ("private_helper", "function", "", 12, 12),
        ("global_fn", "function", "", 14, 14),
        ("handler", "function", "M", 16, 18),
    }
    defs = by_name(fs)
    assert defs[("greet", "M", "function")].doc == "Greets someone.\nPolitely."
    assert not defs[("private_helper", "", "function")].exported
    assert [(i.module, i.alias, i.kind) for i in fs.imports] == [
        ("app.util", "util", "require"),
        ("dkjson", "json", "require"),
    ]


def test_rust_items_inside_item_macros() -> None:
    """The body of a macro invoked where items go is read as items, in place: a function
    in `cfg_rt! { }`, a method in a macro inside an `impl`, a `use` in an inline module
    inside one (`super::` there is the file's module). A macro in a function body and
    a `macro_rules!` definition are not expanded."""
    src = (
        "cfg_rt! {\n"  # 0
        "    /// Spawns a task.\n"
        "    pub fn spawn() {}\n"  # 2
        "}\n"
        "pub struct Mutex;\n"  # 4
        "impl Mutex {\n"
        "    cfg_sync! {\n"
        "        pub fn new() -> Mutex { Mutex }\n"  # 7
        "    }\n"
        "}\n"
        "cfg_net_unix! {\n"  # 10
        "    pub mod unix {\n"
        "        pub use super::async_fd::AsyncFd;\n"  # 12
        "        use self::inner::Helper;\n"
        "    }\n"
        "}\n"
        "fn body() { foo! { fn hidden() {} } }\n"  # 16
        "macro_rules! make { () => { pub struct Made; }; }\n"
    )
    fs = file_symbols("/ws/src/io/mod.rs", src.encode(), "rust")
    by_name = {d.name: d for d in fs.definitions}
    assert (by_name["spawn"].kind, by_name["spawn"].start_line) == ("function", 2)
    assert by_name["spawn"].doc == "Spawns a task."
    assert (by_name["new"].kind, by_name["new"].parent, by_name["new"].start_line) == (
        "method",
        "Mutex",
        7,
    )
    assert "hidden" not in by_name and "Made" not in by_name
    modules = {(i.module, i.names, i.line) for i in fs.imports}
    assert ("self::async_fd", ("AsyncFd",), 12) in modules
    assert ("self::unix::inner", ("Helper",), 13) in modules
