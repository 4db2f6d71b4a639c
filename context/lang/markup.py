"""Prose, markup and data: never indexed (they are not source), but known by extension so
that prompts can name their code fences. Completions still work in them, from the file
itself (``completion.languages`` in docs/configuration.md)."""

from __future__ import annotations

from context.lang import LanguageSpec

SPECS = (
    LanguageSpec("markdown", (".md",), indexed=False),
    LanguageSpec("json", (".json",), indexed=False),
    LanguageSpec("yaml", (".yaml", ".yml"), indexed=False),
    LanguageSpec("toml", (".toml",), indexed=False),
    LanguageSpec("html", (".html",), indexed=False),
    LanguageSpec("css", (".css",), indexed=False),
)
