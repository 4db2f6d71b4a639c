"""The languages the index understands: file extensions, grammars and extraction queries.

Grammars come from the individual ``tree-sitter-<lang>`` wheels rather than
tree-sitter-language-pack: since 1.0 the pack downloads its parsers at run time,
which an offline laptop (and these test machines) cannot do.

Each language has one tree-sitter query whose captures drive ``context.symbols``. The
query is run with a small maximum start depth on the file, then on the bodies of the
classes (and other containers) it found and on ``@scope`` blocks: walking every node of
every function body costs as much as parsing, and nothing in there is a definition.
Captures:

- ``@def.<kind>`` the definition node (kind is a ``DefinitionKind``); ``@name`` its name;
  ``@body`` the body (the signature ends on the body's first line); ``@sig`` a node whose
  last line ends the signature (Python's ``:``); ``@heritage`` nodes holding base classes;
  ``@parent`` an explicit owner (Go receiver, Lua table, C++ ``A::m``); ``@qname`` a
  qualified C++ name; ``@doc`` a docstring; ``@vis`` / ``@mods`` / ``@value`` / ``@decl``
  details read by the language's rules.
- ``@outer`` + ``@decorated``: a wrapper (decorators, ``export``, ``template<>``) whose
  first line is where a leading comment must end.
- ``@scope`` a block to scan like the top level (``if``/``try`` at module level,
  ``#ifdef``, ``extern "C"``, TypeScript ``declare``).
- ``@import`` an import statement, ``@comment`` a comment, ``@attr`` a Rust attribute
  (skipped when looking for the doc comment above an item).
"""

from __future__ import annotations

import os
import re
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from tree_sitter import Language, Parser, Query


@dataclass(frozen=True)
class LanguageSpec:
    """What the index needs to know about one language."""

    name: str
    extensions: tuple[str, ...]
    grammar: Callable[[], Any]  # returns the grammar capsule from the wheel
    query: str
    keywords: frozenset[str] = field(default_factory=frozenset)
    # bytes.translate table mapping every byte that cannot be part of an identifier to a
    # space: translate + split finds the words faster than a regex.
    word_table: bytes = b""
    # Where imports hide below the scanned levels (function-local imports, require()):
    # literal words found with bytes.find (much faster than a regex); the node at a hit
    # (or one of its parents) is the import.
    import_hints: tuple[bytes, ...] = ()
    # Only indented candidates can be missed by the scan (Python).
    hint_indented_only: bool = False

    keyword_bytes: frozenset[bytes] = field(init=False, default=frozenset())

    def __post_init__(self) -> None:
        object.__setattr__(self, "keyword_bytes", frozenset(k.encode() for k in self.keywords))


def _python_grammar() -> Any:
    import tree_sitter_python

    return tree_sitter_python.language()


def _javascript_grammar() -> Any:
    import tree_sitter_javascript

    return tree_sitter_javascript.language()


def _typescript_grammar() -> Any:
    import tree_sitter_typescript

    return tree_sitter_typescript.language_typescript()


def _tsx_grammar() -> Any:
    import tree_sitter_typescript

    return tree_sitter_typescript.language_tsx()


def _go_grammar() -> Any:
    import tree_sitter_go

    return tree_sitter_go.language()


def _rust_grammar() -> Any:
    import tree_sitter_rust

    return tree_sitter_rust.language()


def _java_grammar() -> Any:
    import tree_sitter_java

    return tree_sitter_java.language()


def _c_grammar() -> Any:
    import tree_sitter_c

    return tree_sitter_c.language()


def _cpp_grammar() -> Any:
    import tree_sitter_cpp

    return tree_sitter_cpp.language()


def _lua_grammar() -> Any:
    import tree_sitter_lua

    return tree_sitter_lua.language()


PYTHON_QUERY = r"""
(function_definition name: (identifier) @name ":" @sig
  body: (block . (expression_statement (string) @doc)?)) @def.function
(class_definition name: (identifier) @name superclasses: (argument_list)? @heritage
  ":" @sig body: (block . (expression_statement (string) @doc)?) @body) @def.class
(decorated_definition definition: (_) @decorated) @outer
(module (expression_statement (assignment left: (identifier) @name)) @def.variable)
(module (type_alias_statement left: (type (identifier) @name)) @def.type)
(import_statement) @import
(import_from_statement) @import
(comment) @comment
(if_statement consequence: (block) @scope)
(elif_clause consequence: (block) @scope)
(else_clause body: (block) @scope)
(try_statement body: (block) @scope)
(except_clause (block) @scope)
(finally_clause (block) @scope)
"""

# Shared by JavaScript, TypeScript and TSX; TS_QUERY adds the TypeScript-only nodes.
JS_QUERY = r"""
(function_declaration name: (identifier) @name body: (_) @body) @def.function
(generator_function_declaration name: (identifier) @name body: (_) @body) @def.function
(class_declaration name: (_) @name (class_heritage)? @heritage body: (class_body) @body) @def.class
(method_definition name: (_) @name body: (_) @body) @def.method
(program (lexical_declaration (variable_declarator name: (identifier) @name value: (_)? @value)
  @def.variable) @decl)
(program (variable_declaration (variable_declarator name: (identifier) @name value: (_)? @value)
  @def.variable) @decl)
(program (export_statement declaration: (lexical_declaration (variable_declarator
  name: (identifier) @name value: (_)? @value) @def.variable) @decl))
(export_statement declaration: (_) @decorated) @outer
(import_statement) @import
(export_statement source: (_)) @import
(comment) @comment
"""

TS_QUERY = (
    JS_QUERY
    + r"""
(abstract_class_declaration name: (_) @name (class_heritage)? @heritage body: (class_body) @body)
  @def.class
(function_signature name: (identifier) @name) @def.function
(method_signature name: (_) @name) @def.method
(abstract_method_signature name: (_) @name) @def.method
(interface_declaration name: (_) @name (extends_type_clause)? @heritage body: (_) @body)
  @def.interface
(type_alias_declaration name: (_) @name) @def.type
(enum_declaration name: (_) @name body: (_) @body) @def.enum
(internal_module name: (_) @name body: (_) @body) @def.module
(module name: (_) @name body: (_) @body) @def.module
(export_statement declaration: (ambient_declaration (_) @decorated)) @outer
(ambient_declaration) @scope
(ambient_declaration (lexical_declaration (variable_declarator name: (identifier) @name
  value: (_)? @value) @def.variable) @decl)
(ambient_declaration (variable_declaration (variable_declarator name: (identifier) @name
  value: (_)? @value) @def.variable) @decl)
"""
)

GO_QUERY = r"""
(function_declaration name: (identifier) @name body: (block)? @body) @def.function
(method_declaration
  receiver: (parameter_list (parameter_declaration type: [
    (type_identifier) @parent
    (pointer_type (type_identifier) @parent)
    (generic_type type: (type_identifier) @parent)
    (pointer_type (generic_type type: (type_identifier) @parent))]))
  name: (field_identifier) @name body: (block)? @body) @def.method
(type_declaration (type_spec name: (type_identifier) @name type: (_) @value) @def.type)
(type_declaration (type_alias name: (type_identifier) @name) @def.type)
(source_file (const_declaration (const_spec name: (identifier) @name) @def.constant))
(source_file (var_declaration (var_spec name: (identifier) @name) @def.variable))
(import_declaration) @import
(comment) @comment
"""

RUST_QUERY = r"""
(function_item (visibility_modifier)? @vis name: (identifier) @name body: (block) @body)
  @def.function
(function_signature_item (visibility_modifier)? @vis name: (identifier) @name) @def.function
(struct_item (visibility_modifier)? @vis name: (type_identifier) @name body: (_)? @body)
  @def.struct
(union_item (visibility_modifier)? @vis name: (type_identifier) @name body: (_)? @body)
  @def.struct
(enum_item (visibility_modifier)? @vis name: (type_identifier) @name body: (_) @body) @def.enum
(trait_item (visibility_modifier)? @vis name: (type_identifier) @name
  bounds: (trait_bounds)? @heritage body: (_) @body) @def.trait
(impl_item trait: (_)? @heritage type: [
    (type_identifier) @name
    (generic_type type: (type_identifier) @name)
    (scoped_type_identifier name: (type_identifier) @name)
    (generic_type type: (scoped_type_identifier name: (type_identifier) @name))]
  body: (_) @body) @def.impl
(type_item (visibility_modifier)? @vis name: (type_identifier) @name) @def.type
(const_item (visibility_modifier)? @vis name: (identifier) @name) @def.constant
(static_item (visibility_modifier)? @vis name: (identifier) @name) @def.constant
(mod_item (visibility_modifier)? @vis name: (identifier) @name body: (declaration_list) @body)
  @def.module
(macro_definition name: (identifier) @name) @def.function
(use_declaration) @import
(mod_item !body) @import
(extern_crate_declaration) @import
(line_comment) @comment
(block_comment) @comment
(attribute_item) @attr
"""

JAVA_QUERY = r"""
(class_declaration (modifiers)? @mods name: (identifier) @name (superclass)? @heritage
  (super_interfaces)? @heritage body: (class_body) @body) @def.class
(interface_declaration (modifiers)? @mods name: (identifier) @name (extends_interfaces)? @heritage
  body: (_) @body) @def.interface
(enum_declaration (modifiers)? @mods name: (identifier) @name (super_interfaces)? @heritage
  body: (_) @body) @def.enum
(record_declaration (modifiers)? @mods name: (identifier) @name (super_interfaces)? @heritage
  body: (_) @body) @def.class
(annotation_type_declaration (modifiers)? @mods name: (identifier) @name body: (_) @body)
  @def.interface
(method_declaration (modifiers)? @mods name: (identifier) @name body: (block)? @body) @def.method
(constructor_declaration (modifiers)? @mods name: (identifier) @name body: (_) @body) @def.method
(field_declaration (modifiers) @mods declarator: (variable_declarator name: (identifier) @name))
  @def.constant
(constant_declaration declarator: (variable_declarator name: (identifier) @name)) @def.constant
(import_declaration) @import
(line_comment) @comment
(block_comment) @comment
"""

# Function names can hide behind pointer and reference declarators.
_C_FUNC_DECLARATOR = r"""[
    (function_declarator declarator: (_) @name)
    (pointer_declarator declarator: (function_declarator declarator: (_) @name))
    (pointer_declarator declarator: (pointer_declarator
      declarator: (function_declarator declarator: (_) @name)))
  ]"""

C_QUERY = rf"""
(function_definition declarator: {_C_FUNC_DECLARATOR} body: (_) @body) @def.function
(declaration declarator: {_C_FUNC_DECLARATOR}) @def.function
(struct_specifier name: (type_identifier) @name body: (field_declaration_list) @body) @def.struct
(union_specifier name: (type_identifier) @name body: (field_declaration_list) @body) @def.struct
(enum_specifier name: (type_identifier) @name body: (enumerator_list) @body) @def.enum
(type_definition declarator: (type_identifier) @name) @def.type
(preproc_def name: (identifier) @name) @def.constant
(preproc_function_def name: (identifier) @name) @def.function
(preproc_include) @import
(comment) @comment
"""
_C_SCOPES = r"""
(preproc_if) @scope
(preproc_ifdef) @scope
(preproc_else) @scope
(preproc_elif) @scope
(linkage_specification body: (declaration_list) @scope)
"""
C_QUERY += _C_SCOPES

_CPP_FUNC_DECLARATOR = r"""[
    (function_declarator declarator: (_) @name)
    (pointer_declarator declarator: (function_declarator declarator: (_) @name))
    (reference_declarator (function_declarator declarator: (_) @name))
  ]"""

CPP_QUERY = (
    rf"""
(function_definition declarator: {_CPP_FUNC_DECLARATOR} body: (_) @body) @def.function
(declaration declarator: {_CPP_FUNC_DECLARATOR}) @def.function
(field_declaration declarator: {_CPP_FUNC_DECLARATOR}) @def.method
(class_specifier name: (_) @name (base_class_clause)? @heritage
  body: (field_declaration_list) @body) @def.class
(struct_specifier name: (_) @name (base_class_clause)? @heritage
  body: (field_declaration_list) @body) @def.struct
(union_specifier name: (_) @name body: (field_declaration_list) @body) @def.struct
(enum_specifier name: (_) @name body: (enumerator_list) @body) @def.enum
(namespace_definition name: (_) @name body: (declaration_list) @body) @def.module
(type_definition declarator: (type_identifier) @name) @def.type
(alias_declaration name: (type_identifier) @name) @def.type
(preproc_def name: (identifier) @name) @def.constant
(preproc_function_def name: (identifier) @name) @def.function
(template_declaration [(function_definition) (class_specifier) (struct_specifier) (declaration)
  (alias_declaration)] @decorated) @outer
(preproc_include) @import
(comment) @comment
"""
    + _C_SCOPES
)

LUA_QUERY = r"""
(function_declaration name: (identifier) @name body: (block)? @body) @def.function
(function_declaration name: (dot_index_expression table: (_) @parent field: (identifier) @name)
  body: (block)? @body) @def.function
(function_declaration name: (method_index_expression table: (_) @parent method: (identifier) @name)
  body: (block)? @body) @def.method
(assignment_statement (variable_list name: (dot_index_expression table: (_) @parent
  field: (identifier) @name)) (expression_list value: (function_definition body: (block)? @body)))
  @def.function
(comment) @comment
"""

_PY_KEYWORDS = """False None True and as assert async await break class continue def del elif
else except finally for from global if import in is lambda nonlocal not or pass raise return
try while with yield self cls match case type"""
_JS_KEYWORDS = """break case catch class const continue debugger default delete do else export
extends false finally for function if import in instanceof let new null return super switch this
throw true try typeof undefined var void while with yield async await of static get set"""
_TS_KEYWORDS = (
    _JS_KEYWORDS
    + """ abstract any as asserts boolean declare enum implements infer
interface is keyof module namespace never number object private protected public readonly
require string symbol type unique unknown override satisfies"""
)
_GO_KEYWORDS = """break case chan const continue default defer else fallthrough for func go goto
if import interface map package range return select struct switch type var nil true false iota
int string bool error byte rune"""
_RUST_KEYWORDS = """as async await break const continue crate dyn else enum extern false fn for
if impl in let loop match mod move mut pub ref return self Self static struct super trait true
type unsafe use where while"""
_JAVA_KEYWORDS = """abstract assert boolean break byte case catch char class const continue
default do double else enum extends final finally float for goto if implements import instanceof
int interface long native new package private protected public return short static strictfp super
switch synchronized this throw throws transient try void volatile while true false null var
record"""
_C_KEYWORDS = """auto break case char const continue default do double else enum extern float
for goto if inline int long register restrict return short signed sizeof static struct switch
typedef union unsigned void volatile while define include ifdef ifndef endif elif undef pragma
NULL"""
_CPP_KEYWORDS = (
    _C_KEYWORDS
    + """ bool catch class constexpr delete explicit false friend
mutable namespace new noexcept nullptr operator override private protected public template this
throw true try typename using virtual"""
)
_LUA_KEYWORDS = """and break do else elseif end false for function goto if in local nil not or
repeat return then true until while self"""


def _words(text: str) -> frozenset[str]:
    return frozenset(text.split())


def _word_table(extra: bytes = b"") -> bytes:
    keep = set(b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_" + extra)
    return bytes(c if c in keep else 32 for c in range(256))


_WORDS = _word_table()
_JS_WORDS = _word_table(b"$")
_JS_IMPORT_HINT = (b"require(", b"import(")


def _no_grammar() -> Any:
    raise LookupError("languages read as text have no grammar")


# What the word scan (a file's referenced identifiers) uses for a language read as text.
TEXT_SPEC = LanguageSpec("text", (), _no_grammar, "", frozenset(), _WORDS)

LANGUAGES: dict[str, LanguageSpec] = {
    spec.name: spec
    for spec in (
        LanguageSpec(
            "python",
            (".py", ".pyi"),
            _python_grammar,
            PYTHON_QUERY,
            _words(_PY_KEYWORDS),
            _WORDS,
            (b"import",),
            hint_indented_only=True,
        ),
        LanguageSpec(
            "javascript",
            (".js", ".jsx", ".mjs", ".cjs"),
            _javascript_grammar,
            JS_QUERY,
            _words(_JS_KEYWORDS),
            _JS_WORDS,
            _JS_IMPORT_HINT,
        ),
        LanguageSpec(
            "typescript",
            (".ts", ".mts", ".cts"),
            _typescript_grammar,
            TS_QUERY,
            _words(_TS_KEYWORDS),
            _JS_WORDS,
            _JS_IMPORT_HINT,
        ),
        LanguageSpec(
            "tsx",
            (".tsx",),
            _tsx_grammar,
            TS_QUERY,
            _words(_TS_KEYWORDS),
            _JS_WORDS,
            _JS_IMPORT_HINT,
        ),
        LanguageSpec("go", (".go",), _go_grammar, GO_QUERY, _words(_GO_KEYWORDS), _WORDS),
        LanguageSpec("rust", (".rs",), _rust_grammar, RUST_QUERY, _words(_RUST_KEYWORDS), _WORDS),
        LanguageSpec("java", (".java",), _java_grammar, JAVA_QUERY, _words(_JAVA_KEYWORDS), _WORDS),
        LanguageSpec("c", (".c", ".h"), _c_grammar, C_QUERY, _words(_C_KEYWORDS), _WORDS),
        LanguageSpec(
            "cpp",
            (".cc", ".cpp", ".cxx", ".c++", ".hpp", ".hh", ".hxx", ".h++", ".ipp", ".inl", ".tpp"),
            _cpp_grammar,
            CPP_QUERY,
            _words(_CPP_KEYWORDS),
            _WORDS,
        ),
        LanguageSpec(
            "lua",
            (".lua",),
            _lua_grammar,
            LUA_QUERY,
            _words(_LUA_KEYWORDS),
            _WORDS,
            (b"require",),
        ),
    )
}

EXTENSIONS: dict[str, str] = {
    ext: spec.name for spec in LANGUAGES.values() for ext in spec.extensions
}

# Languages read without a grammar. Their files are indexed as text: no definitions or
# imports, but their code is context like any other (windows similar to the code at the
# cursor, recently edited and viewed regions), as neighbouring tabs are for Copilot.
# Programming languages only: prose, markup and data files are not source.
TEXT_LANGUAGES: dict[str, tuple[str, ...]] = {
    "ruby": (".rb", ".rake", ".gemspec"),
    "php": (".php",),
    "csharp": (".cs",),
    "kotlin": (".kt", ".kts"),
    "swift": (".swift",),
    "scala": (".scala", ".sc"),
    "groovy": (".groovy", ".gradle"),
    "dart": (".dart",),
    "objective-c": (".m", ".mm"),
    "elixir": (".ex", ".exs"),
    "erlang": (".erl", ".hrl"),
    "haskell": (".hs",),
    "ocaml": (".ml", ".mli"),
    "fsharp": (".fs", ".fsi", ".fsx"),
    "clojure": (".clj", ".cljs", ".cljc"),
    "elm": (".elm",),
    "julia": (".jl",),
    "r": (".r",),
    "perl": (".pl", ".pm"),
    "shell": (".sh", ".bash", ".zsh"),
    "powershell": (".ps1", ".psm1"),
    "sql": (".sql",),
    "zig": (".zig",),
    "nim": (".nim",),
    "crystal": (".cr",),
    "solidity": (".sol",),
    "vue": (".vue",),
    "svelte": (".svelte",),
}
TEXT_EXTENSIONS: dict[str, str] = {
    ext: name for name, extensions in TEXT_LANGUAGES.items() for ext in extensions
}


# Editor language ids (VS Code's, Neovim's filetypes) of the parsed languages, for
# documents whose path says nothing: untitled buffers, notebook cells.
_EDITOR_LANGUAGES = {
    "python": "python",
    "javascript": "javascript",
    "javascriptreact": "javascript",
    "typescript": "typescript",
    "typescriptreact": "tsx",
    "go": "go",
    "rust": "rust",
    "java": "java",
    "c": "c",
    "cpp": "cpp",
    "lua": "lua",
}


def language_of_document(path: str, language_id: str = "") -> str | None:
    """The language of a document: by its path's extension, else by the editor's
    language id (an untitled buffer, a notebook cell)."""
    return language_for_path(path) or _EDITOR_LANGUAGES.get(language_id)


def has_grammar(language: str) -> bool:
    """Whether files of ``language`` are parsed (else they are indexed as text)."""
    return language in LANGUAGES


# `.h` is shared by C and C++; these markers in a header's first 8 KB mean C++.
_CPP_HEADER_MARKERS = re.compile(
    rb"^\s*(?:class\s+\w+\s*[:{]|namespace\s+\w*\s*\{|template\s*<|public:|private:|"
    rb"protected:|using\s+namespace\b|#include\s*<(?:vector|string|memory|map|iostream)>)",
    re.MULTILINE,
)


def language_for_path(path: str) -> str | None:
    """The language of a file by its extension (one with a grammar, else one read as
    text), or None when the index does not take such files.

    Minified bundles (``*.min.js``) are generated code and are not indexed.
    """
    return language_for_name(os.path.basename(path))


def language_for_name(base: str) -> str | None:
    """``language_for_path`` of a file name (no folder): what the walk asks per entry."""
    dot = base.rfind(".")
    if dot <= 0:
        return None
    ext = base[dot:].lower()
    lang = EXTENSIONS.get(ext)
    if lang is None:
        return TEXT_EXTENSIONS.get(ext)
    if lang == "javascript" and base.endswith((".min.js", ".min.mjs", ".bundle.js")):
        return None
    return lang


def refine_language(language: str, source: bytes) -> str:
    """Pick the grammar for ambiguous extensions from the content (a ``.h`` using C++)."""
    if language == "c" and _CPP_HEADER_MARKERS.search(source, 0, 8192):
        return "cpp"
    return language


_state = threading.local()
_languages: dict[str, Language] = {}
_queries: dict[str, Query] = {}
_compile_lock = threading.Lock()


def ts_language(name: str) -> Language:
    """The tree-sitter Language object for a language name (loaded once per process)."""
    lang = _languages.get(name)
    if lang is None:
        with _compile_lock:
            lang = _languages.get(name)
            if lang is None:
                lang = Language(LANGUAGES[name].grammar())
                _languages[name] = lang
    return lang


def query(name: str) -> Query:
    """The compiled extraction query of a language (compiled once per process)."""
    q = _queries.get(name)
    if q is None:
        lang = ts_language(name)
        with _compile_lock:
            q = _queries.get(name)
            if q is None:
                q = Query(lang, LANGUAGES[name].query)
                _queries[name] = q
    return q


def parser(name: str) -> Parser:
    """A parser for the language, private to the calling thread (parsers are not thread-safe)."""
    parsers: dict[str, Parser] | None = getattr(_state, "parsers", None)
    if parsers is None:
        parsers = _state.parsers = {}
    p = parsers.get(name)
    if p is None:
        p = parsers[name] = Parser(ts_language(name))
    return p
