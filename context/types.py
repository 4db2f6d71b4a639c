"""Plain data shared by the index, retrieval and packing.

No tree-sitter or LSP types cross these boundaries: every stage takes and returns
these small frozen dataclasses, so each stage can be tested alone.

Conventions: paths are absolute, normalised `str` paths (``os.path.realpath``);
lines are 0-based and `end_line` is inclusive; byte offsets are into the UTF-8 text.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

# The two prompt layouts (docs/context.md): Qwen's repository FIM format, or a chat prompt.
# The one definition of the type; lsp_server's engine and settings use it too.
PromptFormat = Literal["fim", "chat"]

DefinitionKind = Literal[
    "function",
    "method",
    "class",
    "interface",
    "struct",
    "enum",
    "type",
    "constant",
    "variable",
    "module",
    "trait",
    "impl",
]

# Kinds whose body runs when called: what "the function at the cursor" can be.
CALLABLE_KINDS: frozenset[str] = frozenset({"function", "method"})
# Kinds whose members are definitions of their own, with the container as their
# ``parent`` (a function inside one becomes a method).
CONTAINER_KINDS: frozenset[str] = frozenset(
    {"class", "interface", "struct", "enum", "trait", "impl"}
)


@dataclass(frozen=True, slots=True)
class Definition:
    """One definition found in a file."""

    name: str
    kind: DefinitionKind
    path: str
    start_line: int  # first line of the definition (decorators / leading comment excluded)
    end_line: int  # last line of the body, inclusive
    signature_end_line: int  # last line of the signature (e.g. the line with `:` or `{`)
    doc: str = ""  # docstring or leading comment, without comment markers
    parent: str = ""  # enclosing class/struct/impl name for methods and fields
    bases: tuple[str, ...] = ()  # base classes / implemented interfaces, as written
    exported: bool = True  # visible to importers (e.g. not `_private` in Python, `pub` in Rust)


@dataclass(frozen=True, slots=True)
class Import:
    """One import statement's module specifier and the names it binds."""

    module: str  # as written: "..pkg.mod", "./util", "github.com/x/y/z", "crate::a::b"
    names: tuple[str, ...] = ()  # imported names ("*" for a wildcard); empty = whole module
    alias: str = ""  # `import numpy as np` -> "np"
    line: int = 0
    # Added by the index: the local names bound, parallel to `names`, when some differ
    # (`from a import b as c` -> names ("b",), local_names ("c",)); empty = same as names.
    local_names: tuple[str, ...] = ()
    # How the module is brought in, when it matters for resolution: "" (plain import),
    # "reexport" (JS/TS `export ... from`), "require"/"dynamic" (JS `require()`/`import()`,
    # Lua `require`), "use" / "mod" (Rust `use` / `mod foo;`), "include" (C/C++ `#include`).
    kind: str = ""


@dataclass(frozen=True, slots=True)
class FileSymbols:
    """Everything the index knows about one file."""

    path: str
    language: (
        str  # "python", "typescript", "tsx", "javascript", "go", "rust", "java", "c", "cpp", "lua"
    )
    definitions: tuple[Definition, ...] = ()
    imports: tuple[Import, ...] = ()
    references: frozenset[str] = field(default_factory=frozenset)  # identifiers used in the file


@dataclass(frozen=True, slots=True)
class Snippet:
    """A piece of the workspace chosen for the prompt, with why it was chosen."""

    path: str
    start_line: int  # 0-based
    end_line: int  # 0-based, inclusive
    text: str
    reason: str  # e.g. "definition of `foo` imported from pkg.mod", "recently edited", "similar"
    score: float = 0.0  # higher = more useful; used to drop snippets when over budget
    tokens: int = 0  # filled by packing
    # Which tier of the packed prompt it belongs to: "definition", "recent", "current"
    # (far parts of the current file) or "similar"; see context/pack.py for the order.
    source: str = ""
    # A cheaper form (signature + doc, closing line) as contiguous pieces of the same
    # file; packing uses it when the budget is tight. Empty: no cheaper form.
    skeleton: tuple[Snippet, ...] = ()


@dataclass(frozen=True, slots=True)
class PackedContext:
    """The multi-file context, packed and ordered least-changing first."""

    snippets: tuple[Snippet, ...]
    tokens: int  # total tokens of the rendered blocks (model tokenizer or estimate)
    text: str = ""  # the rendered blocks, in prompt order
    # (source, rendered text) per non-empty tier in prompt order; their texts joined
    # are `text`. Boundaries between tiers are where the engine can checkpoint.
    segments: tuple[tuple[str, str], ...] = ()
