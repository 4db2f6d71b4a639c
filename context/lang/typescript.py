"""TypeScript and TSX: JavaScript's rules and resolution (``context.lang.javascript``)
with a query that adds interfaces, type aliases, enums, namespaces and ``declare``
blocks."""

from __future__ import annotations

from typing import Any

from context.lang import LanguageSpec, words
from context.lang.javascript import (
    IMPORT_HINTS,
    IMPORT_NODE_TYPES,
    KEYWORDS_TEXT,
    PROJECT_FILES,
    WORDS,
    ScriptResolver,
    ScriptRetrieval,
    ScriptRules,
)
from context.lang.javascript import QUERY as JS_QUERY


def _typescript_grammar() -> Any:
    import tree_sitter_typescript

    return tree_sitter_typescript.language_typescript()


def _tsx_grammar() -> Any:
    import tree_sitter_typescript

    return tree_sitter_typescript.language_tsx()


QUERY = (
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

KEYWORDS = words(
    KEYWORDS_TEXT
    + """ abstract any as asserts boolean declare enum implements infer
interface is keyof module namespace never number object private protected public readonly
require string symbol type unique unknown override satisfies"""
)

SPECS = (
    LanguageSpec(
        "typescript",
        (".ts", ".mts", ".cts"),
        _typescript_grammar,
        QUERY,
        KEYWORDS,
        WORDS,
        IMPORT_HINTS,
        IMPORT_NODE_TYPES,
        rules=ScriptRules,
        resolver=ScriptResolver,
        retrieval=ScriptRetrieval,
        project_files=PROJECT_FILES,
        editor_ids=("typescript",),
    ),
    LanguageSpec(
        "tsx",
        (".tsx",),
        _tsx_grammar,
        QUERY,
        KEYWORDS,
        WORDS,
        IMPORT_HINTS,
        IMPORT_NODE_TYPES,
        rules=ScriptRules,
        resolver=ScriptResolver,
        retrieval=ScriptRetrieval,
        project_files=PROJECT_FILES,
        editor_ids=("typescriptreact",),
    ),
)
