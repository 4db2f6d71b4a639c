"""The one language table every module reads, built from the files of ``context/lang/``.

Each module of ``context.lang`` declares its languages (``SPECS``); this module finds
them, checks that no two claim one name or extension, and answers what the rest of
the server asks: the language of a path or an editor's document, whether it has a
grammar, the tag of its code fences, and the tree-sitter objects to parse it.

Grammars come from the individual ``tree-sitter-<lang>`` wheels rather than
tree-sitter-language-pack: since 1.0 the pack downloads its parsers at run time,
which an offline laptop (and these test machines) cannot do.
"""

from __future__ import annotations

import importlib
import os
import pkgutil
import threading

from tree_sitter import Language, Parser, Query

import context.lang
from context.lang import WORDS, LanguageSpec, Resolver

__all__ = [
    "EXTENSIONS",
    "LANGUAGES",
    "PROJECT_FILES",
    "TEXT_EXTENSIONS",
    "TEXT_LANGUAGES",
    "TEXT_SPEC",
    "LanguageSpec",
    "fence_tag",
    "has_grammar",
    "language_for_name",
    "language_for_path",
    "language_of_document",
    "parser",
    "query",
    "refine_language",
    "resolver_class",
    "spec",
    "ts_language",
]


def _discover() -> dict[str, LanguageSpec]:
    """Every ``LanguageSpec`` declared by the modules of ``context.lang``, by name."""
    found: dict[str, LanguageSpec] = {}
    owner: dict[str, str] = {}  # extension -> language
    for info in sorted(pkgutil.iter_modules(context.lang.__path__), key=lambda m: m.name):
        module = importlib.import_module(f"context.lang.{info.name}")
        for spec in getattr(module, "SPECS", ()):
            if not isinstance(spec, LanguageSpec):
                raise TypeError(f"context.lang.{info.name}.SPECS holds {spec!r}")
            if spec.name in found:
                raise ValueError(f"language {spec.name!r} is declared twice")
            for ext in spec.extensions:
                if ext != ext.lower() or not ext.startswith("."):
                    raise ValueError(f"{spec.name}: extension {ext!r} is not '.lowercase'")
                if ext in owner:
                    raise ValueError(f"{ext} is claimed by {owner[ext]} and {spec.name}")
                owner[ext] = spec.name
            found[spec.name] = spec
    return found


_ALL = _discover()
_BY_EXTENSION: dict[str, LanguageSpec] = {
    ext: spec for spec in _ALL.values() for ext in spec.extensions
}

# The parsed languages (a grammar and a query), by name.
LANGUAGES: dict[str, LanguageSpec] = {
    name: spec for name, spec in _ALL.items() if spec.indexed and spec.has_grammar
}
EXTENSIONS: dict[str, str] = {
    ext: spec.name for spec in LANGUAGES.values() for ext in spec.extensions
}
# Languages read without a grammar, name -> extensions (``context.lang.text``).
TEXT_LANGUAGES: dict[str, tuple[str, ...]] = {
    name: spec.extensions for name, spec in _ALL.items() if spec.indexed and not spec.has_grammar
}
TEXT_EXTENSIONS: dict[str, str] = {
    ext: name for name, extensions in TEXT_LANGUAGES.items() for ext in extensions
}
# Files the import resolvers read (module paths, path aliases, crate names).
PROJECT_FILES: frozenset[str] = frozenset(
    name for spec in _ALL.values() for name in spec.project_files
)
# What the word scan (a file's referenced identifiers) uses for a language read as text.
TEXT_SPEC = LanguageSpec("text", (), word_table=WORDS)

_EDITOR_LANGUAGES: dict[str, str] = {
    editor_id: spec.name for spec in LANGUAGES.values() for editor_id in spec.editor_ids
}


def spec(language: str) -> LanguageSpec:
    """The spec of a parsed language, or ``TEXT_SPEC`` for any other."""
    return LANGUAGES.get(language, TEXT_SPEC)


def resolver_class(language: str) -> type[Resolver] | None:
    """The class that resolves the imports of ``language`` (None: it has no imports)."""
    found = LANGUAGES.get(language)
    return found.resolver if found is not None else None


def language_of_document(path: str, language_id: str = "") -> str | None:
    """The language of a document: by its path's extension, else by the editor's
    language id (an untitled buffer, a notebook cell)."""
    return language_for_path(path) or _EDITOR_LANGUAGES.get(language_id)


def has_grammar(language: str) -> bool:
    """Whether files of ``language`` are parsed (else they are indexed as text)."""
    return language in LANGUAGES


def language_for_path(path: str) -> str | None:
    """The language of a file by its extension (one with a grammar, else one read as
    text), or None when the index does not take such files.

    Generated code (minified bundles, ``*.min.js``) is not indexed.
    """
    return language_for_name(os.path.basename(path))


def language_for_name(base: str) -> str | None:
    """``language_for_path`` of a file name (no folder): what the walk asks per entry."""
    dot = base.rfind(".")
    if dot <= 0:
        return None
    found = _BY_EXTENSION.get(base[dot:].lower())
    if found is None or not found.indexed:
        return None
    if found.generated and base.endswith(found.generated):
        return None
    return found.name


def fence_tag(path: str) -> str:
    """The markdown code-fence tag of a file by its extension ("" when unknown), for any
    language this table knows, indexed or not."""
    base = os.path.basename(path)
    dot = base.rfind(".")
    found = _BY_EXTENSION.get(base[dot:].lower()) if dot > 0 else None
    return found.fence if found is not None else ""


def refine_language(language: str, source: bytes) -> str:
    """Pick the grammar for ambiguous extensions from the content (a ``.h`` using C++)."""
    found = LANGUAGES.get(language)
    if found is not None and found.refine is not None:
        return found.refine(source)
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
                grammar = LANGUAGES[name].grammar
                assert grammar is not None  # (LANGUAGES holds the parsed ones)
                lang = Language(grammar())
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
