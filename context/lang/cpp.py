"""C++: C's rules and ``#include`` resolution (``context.lang.c``) with a query that adds
classes, namespaces, templates, methods declared in a class and ``A::m`` definitions
outside it."""

from __future__ import annotations

from typing import Any

from context.lang import LanguageSpec, words
from context.lang.c import KEYWORDS_TEXT, SCOPES_QUERY, CResolver, CRetrieval, CRules


def _grammar() -> Any:
    import tree_sitter_cpp

    return tree_sitter_cpp.language()


# Function names can hide behind pointer and reference declarators.
_CPP_FUNC_DECLARATOR = r"""[
    (function_declarator declarator: (_) @name)
    (pointer_declarator declarator: (function_declarator declarator: (_) @name))
    (reference_declarator (function_declarator declarator: (_) @name))
  ]"""

QUERY = (
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
    + SCOPES_QUERY
)

KEYWORDS = words(
    KEYWORDS_TEXT
    + """ bool catch class constexpr delete explicit false friend
mutable namespace new noexcept nullptr operator override private protected public template this
throw true try typename using virtual"""
)

SPECS = (
    LanguageSpec(
        "cpp",
        (".cc", ".cpp", ".cxx", ".c++", ".hpp", ".hh", ".hxx", ".h++", ".ipp", ".inl", ".tpp"),
        _grammar,
        QUERY,
        KEYWORDS,
        rules=CRules,
        resolver=CResolver,
        retrieval=CRetrieval,
        editor_ids=("cpp",),
    ),
)
