"""The language table built from the files of context/lang/: what a new language file
must get right, and the lookups every other module makes through it."""

from __future__ import annotations

import importlib
import pkgutil
import re
import typing

import pytest

import context.lang
from context import languages
from context.lang import LanguageSpec, Resolver
from context.rules import Rules
from context.types import DefinitionKind
from lsp_server.completion.prompt import fence_language, language_of

_ROLES = {"import", "comment", "outer", "decorated", "scope", "attr", "expand"}
_DETAILS = {"name", "body", "sig", "heritage", "parent", "qname", "doc", "vis", "mods"}
_DETAILS |= {"value", "decl"}


def test_every_file_of_context_lang_is_in_the_table() -> None:
    modules = [m.name for m in pkgutil.iter_modules(context.lang.__path__)]
    assert {"python", "go", "rust", "text"} <= set(modules)
    for name in modules:
        specs = importlib.import_module(f"context.lang.{name}").SPECS
        assert specs and all(isinstance(s, LanguageSpec) for s in specs), name
        for spec in specs:
            for ext in spec.extensions:
                found = languages.language_for_path("x" + ext)
                assert found == (spec.name if spec.indexed else None), (name, ext)


@pytest.mark.parametrize("name", sorted(languages.LANGUAGES))
def test_each_parsed_language_query_compiles_and_captures_known_roles(name: str) -> None:
    spec = languages.LANGUAGES[name]
    q = languages.query(name)  # compiles against the grammar (raises otherwise)
    assert q.pattern_count > 0
    kinds = set(typing.get_args(DefinitionKind))
    for capture in set(re.findall(r"@([\w.]+)", spec.query)):
        if capture.startswith("def."):
            assert capture[4:] in kinds, f"{name}: @{capture} is no DefinitionKind"
        else:
            assert capture in _ROLES | _DETAILS, f"{name}: unknown capture @{capture}"
    assert issubclass(spec.rules, Rules)
    assert spec.resolver is None or issubclass(spec.resolver, Resolver)
    assert spec.editor_ids, f"{name}: untitled buffers need an editor language id"


def test_languages_sharing_a_resolver_share_its_class() -> None:
    script = {languages.resolver_class(n) for n in ("javascript", "typescript", "tsx")}
    assert len(script) == 1
    assert languages.resolver_class("c") is languages.resolver_class("cpp")
    assert languages.resolver_class("ruby") is None


@pytest.mark.parametrize(
    ("path", "language"),
    [
        ("pkg/app.py", "python"),
        ("web/App.TSX", "tsx"),
        ("lib/util.min.js", None),  # generated code is not indexed
        ("lib/util.js", "javascript"),
        ("include/x.hpp", "cpp"),
        ("tasks.rake", "ruby"),  # read as text
        ("README.md", None),  # prose: known by name only
        ("Makefile", None),
        (".bashrc", None),
    ],
)
def test_language_for_path(path: str, language: str | None) -> None:
    assert languages.language_for_path(path) == language


def test_documents_without_a_path_take_the_editors_language_id() -> None:
    assert languages.language_of_document("untitled:1", "typescriptreact") == "tsx"
    assert languages.language_of_document("untitled:1", "javascriptreact") == "javascript"
    assert languages.language_of_document("untitled:1", "ruby") is None
    assert languages.language_of_document("a.go", "python") == "go"  # the path first


def test_a_header_written_in_cpp_is_parsed_as_cpp() -> None:
    assert languages.refine_language("c", b"#pragma once\nnamespace app {\n}\n") == "cpp"
    assert languages.refine_language("c", b"int add(int a, int b);\n") == "c"
    assert languages.refine_language("python", b"class A:\n    pass\n") == "python"


def test_fence_tags_come_from_the_same_table() -> None:
    for ext, name in languages.EXTENSIONS.items():
        assert language_of("x" + ext) == languages.LANGUAGES[name].fence
    assert language_of("deploy.sh") == "bash"
    assert language_of("notes.md") == "markdown"
    assert language_of("x.rake") == "ruby"
    assert fence_language("Dockerfile", "dockerfile") == "dockerfile"


def test_project_files_are_those_the_resolvers_read() -> None:
    assert {"go.mod", "Cargo.toml", "tsconfig.json", "package.json"} <= languages.PROJECT_FILES


def test_retrieval_names_no_language() -> None:
    """What retrieval does differently per language is in the language's file
    (`LanguageSpec.retrieval`): context/retrieve.py has no branch on a language's name,
    extension or file naming convention in its code."""
    import ast
    import inspect

    import context.retrieve

    tree = ast.parse(inspect.getsource(context.retrieve))
    names = set(languages.LANGUAGES) | set(languages.EXTENSIONS)
    names |= {"_test.go", "lib.rs", "__init__.py", "Cargo.toml", "go.mod"}
    found = [
        node.value
        for node in ast.walk(tree)
        if isinstance(node, ast.Constant)
        and isinstance(node.value, str)
        and (node.value in names or any(node.value.endswith(n) for n in ("_test.go", ".rs")))
    ]
    assert found == []
