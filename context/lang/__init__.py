"""One file per language: what the index knows about it, and nothing elsewhere.

Each module of this package declares ``SPECS``, a tuple of ``LanguageSpec``: the file
extensions and editor language ids of a language, its tree-sitter grammar and
extraction query, its keywords, the ``Rules`` that read a definition or an import
(``context.rules``) and the ``Resolver`` that finds the files an import refers to.
``context.languages`` finds the modules of this package by itself and builds the one
table every other module reads, so adding a language is adding a file here (the guide:
"How to add a language" in docs/context.md).

This module holds the contract a language file fills in: ``LanguageSpec``, the
``Resolver`` base class and the ``ResolveHost`` a resolver asks for what it needs.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol

from context.rules import Rules
from context.types import Definition, FileSymbols, Import

if TYPE_CHECKING:
    from context.imports import WorkspaceView


def word_table(extra: bytes = b"") -> bytes:
    """A ``bytes.translate`` table mapping every byte that cannot be part of an identifier
    (letters, digits, ``_`` and ``extra``) to a space."""
    keep = set(b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_" + extra)
    return bytes(c if c in keep else 32 for c in range(256))


WORDS = word_table()


def words(text: str) -> frozenset[str]:
    """The whitespace-separated words of ``text`` (keyword lists)."""
    return frozenset(text.split())


class ResolveHost(Protocol):
    """What a ``Resolver`` may use: the index's view of the workspace and the shared
    steps of resolution (``context.imports.ImportResolver`` provides them)."""

    @property
    def view(self) -> WorkspaceView: ...

    def follow(self, path: str, name: str, language: str) -> list[str]:
        """The file that defines ``name`` exported by ``path``, following re-exports."""
        ...

    def with_names(self, target: str, imp: Import, language: str) -> list[str]:
        """The files defining each name ``imp`` imports from ``target`` (``target`` itself
        for a whole-module import)."""
        ...

    def by_suffix(self, rel: str, near: str) -> str | None:
        """The indexed file whose path ends with ``rel``, nearest to ``near``."""
        ...

    def read_text(self, path: str) -> str | None:
        """A small project file (``go.mod``, ``Cargo.toml``), or None."""
        ...

    def read_jsonc(self, path: str) -> dict[str, object] | None:
        """A JSON object from a file that may hold comments and trailing commas."""
        ...


class Resolver:
    """Finds the workspace files an import of one language refers to.

    One instance per index (and per class: languages that share a resolver class, such
    as JavaScript and TypeScript, share its caches). What it derives from project files
    is cached until ``reset``; results are memoised by ``ImportResolver``.
    """

    # Whether resolution depends on the importing file itself rather than its folder
    # (Rust: `mod foo;` is found next to the module's own file).
    per_file = False

    def __init__(self, host: ResolveHost) -> None:
        self.host = host
        self.view = host.view

    def resolve(self, from_path: str, imp: Import) -> list[str]:
        """The files ``imp`` (found in ``from_path``) refers to, best first."""
        return []

    def reset(self, project_files_changed: bool) -> None:
        """Forget what was derived from the file set (and from project files, if they
        changed)."""


class RetrievalHost(Protocol):
    """What a language's ``Retrieval`` rules may ask of the request being answered
    (``context.retrieve``): the current file, the index's symbols and resolution."""

    path: str

    def file(self, path: str) -> FileSymbols | None:
        """The symbols of an indexed (or open) file."""
        ...

    def resolve(self, from_path: str, imp: Import) -> list[str]:
        """The files ``imp``, found in ``from_path``, refers to (memoised per request)."""
        ...

    def files_in_dir(self, folder: str) -> list[str]:
        """Indexed files directly in ``folder``."""
        ...

    def imports_of(self, path: str) -> frozenset[str]:
        """The files the imports of ``path`` resolve to (kept by the index between
        requests: the graph's edges are resolved once)."""
        ...

    def file_lines(self, path: str) -> list[str] | None:
        """The lines of a file's current text (None: it has none)."""
        ...


@dataclass(frozen=True)
class FillSource:
    """Files whose definitions the code at the cursor can use without naming them in an
    import of its own: the fill offers their names (``context.retrieve``)."""

    label: str  # how the reason names it: "the crate", "an included header"
    files: tuple[str, ...]
    # Every definition, not only the exported ones: a header included by a ``.c`` file
    # sees its ``static`` functions.
    everything: bool = False
    # Among names the folder uses equally, a lower rank comes first (retrieval sets it).
    rank: int = 0


class Retrieval:
    """A language's own rules of retrieval; the defaults are a language whose names
    from other files come through imports resolved by its ``Resolver``.

    ``context.retrieve`` asks these and never a language's name.
    """

    # A folder is a package whose names need no import (Go, Java).
    package_folder: bool = False
    # Names from other files come only through imports (Python, JavaScript/TypeScript):
    # a name near the cursor found only by name elsewhere ranks lower, and names used
    # farther away are not looked up by name at all.
    names_need_imports: bool = False
    # A module re-exports names through its imports (an `__init__.py`, an `index.ts`, a
    # Rust `pub use`): the fill offers those names too.
    reexports: bool = False
    # `#` starts a comment line (not in C and C++, where it starts a directive).
    hash_comments: bool = True
    # A bare name is the file's own, its package's or a wildcard import's, never
    # another package's (Go: those are written `pkg.Name`): not looked up by name.
    bare_names_in_package: bool = False

    @classmethod
    def in_package(cls, path: str, other: str) -> bool:
        """Whether `other`, a file of `path`'s folder, is part of its package."""
        return True

    @classmethod
    def package_view(cls, path: str, found: list[Definition]) -> list[Definition]:
        """Of the definitions of one name in the cursor's package, those that code at
        `path` can use (Go: not a test function `go test` runs, and one of several
        build-constrained variants)."""
        return found

    @classmethod
    def fill_worthy(cls, name: str) -> bool:
        """Whether a definition nothing names yet is worth offering (not a C include
        guard)."""
        return True

    @classmethod
    def fill_sources(cls, host: RetrievalHost, fs: FileSymbols) -> list[FillSource]:
        """Files in scope beyond the file's own imports, nearest first."""
        return []

    @classmethod
    def names_in_scope(cls, host: RetrievalHost, fs: FileSymbols) -> dict[str, list[Definition]]:
        """Definitions the file sees without importing them, by name, where a folder is
        no package (Rust's macros in textual scope): looked up like a package's names."""
        return {}

    @classmethod
    def external_names(cls, fs: FileSymbols) -> frozenset[str]:
        """Names the file's imports bind from outside any workspace (Rust's `use
        std::io::Read`): a same-named definition of the tree is not what they refer to,
        so they are not looked up by name."""
        return frozenset()

    @classmethod
    def module_name(cls, host: RetrievalHost, imp: Import, files: list[str]) -> str:
        """The name a whole-module import without an alias binds, when the language
        says it elsewhere than in the import's last segment (Go: the package clause of
        the files); "" for the last segment."""
        return ""

    @classmethod
    def submodule(cls, imp: Import, name: str) -> Import | None:
        """The import of `name` as a module of its own, when `imp` imports it from a
        package but no file of the package defines it (Python's `from pkg import mod`)."""
        return None

    @classmethod
    def code_paths(cls, line: str) -> list[list[str]]:
        """Qualified paths written in a line of code (not an import), as segments,
        resolved like an import of their leading part (Rust's `crate::util::say`)."""
        return []

    @classmethod
    def path_import(cls, segments: list[str]) -> Import:
        """The import that a path's leading `segments` amount to."""
        return Import(".".join(segments))


@dataclass(frozen=True)
class LanguageSpec:
    """What the index needs to know about one language.

    A language without ``grammar`` is read as text: its files are indexed for their
    words and windows (no definitions or imports). One with ``indexed`` false is only
    known by name (prose, markup and data: prompts name their code fences).
    """

    name: str
    extensions: tuple[str, ...]
    # Returns the grammar capsule from its tree-sitter wheel (imported only when called).
    grammar: Callable[[], Any] | None = None
    # The extraction query; its captures are described in docs/context.md and
    # ``context.symbols``.
    query: str = ""
    keywords: frozenset[str] = frozenset()
    # bytes.translate table mapping every byte that cannot be part of an identifier to a
    # space: translate + split finds the words faster than a regex.
    word_table: bytes = WORDS
    # Where imports hide below the scanned levels (function-local imports, require()):
    # literal words found with bytes.find (much faster than a regex); the node at a hit,
    # or one of its parents, is the import when its type is in ``import_node_types``.
    import_hints: tuple[bytes, ...] = ()
    import_node_types: frozenset[str] = frozenset()
    # Only indented candidates can be missed by the scan (Python).
    hint_indented_only: bool = False
    rules: type[Rules] = Rules
    resolver: type[Resolver] | None = None
    # What retrieval does differently for this language (``Retrieval``).
    retrieval: type[Retrieval] = Retrieval
    # Project files the resolver reads (module paths, path aliases, crate names): the
    # walk reports them and their changes.
    project_files: tuple[str, ...] = ()
    # Editor language ids (VS Code's, Neovim's filetypes) that mean this language, for
    # documents whose path says nothing: untitled buffers, notebook cells.
    editor_ids: tuple[str, ...] = ()
    # File name endings of generated code (minified bundles): not indexed.
    generated: tuple[str, ...] = ()
    # The tag of a markdown code fence around its code ("" = ``name``).
    fence: str = ""
    # The language a file's content shows, for an extension two languages share (a
    # ``.h`` header written in C++).
    refine: Callable[[bytes], str] | None = None
    # Files read from disk are parsed without the middles of function bodies
    # (``context.skeleton``, Python only).
    skeleton_parse: bool = False
    indexed: bool = True

    keyword_bytes: frozenset[bytes] = field(init=False, default=frozenset())

    def __post_init__(self) -> None:
        object.__setattr__(self, "keyword_bytes", frozenset(k.encode() for k in self.keywords))
        if not self.fence:
            object.__setattr__(self, "fence", self.name)

    @property
    def has_grammar(self) -> bool:
        return self.grammar is not None
