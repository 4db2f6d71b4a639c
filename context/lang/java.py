"""Java: definitions, imports and import resolution.

Resolution: package path + class name (``import a.b.C`` -> ``a/b/C.java``, ``import static
a.b.C.m`` -> ``a/b/C.java``, ``a.b.*`` -> the folder's files), matched against the end of
indexed paths. Only ``static final`` fields are definitions; ``private`` members are not
exported.
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from typing import Any

from tree_sitter import Node

from context.lang import FillSource, LanguageSpec, Resolver, Retrieval, RetrievalHost, words
from context.rules import Enclosing, RawImport, RuleContext, Rules
from context.types import FileSymbols, Import


def _grammar() -> Any:
    import tree_sitter_java

    return tree_sitter_java.language()


QUERY = r"""
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

KEYWORDS = words(
    """abstract assert boolean break byte case catch char class const continue
default do double else enum extends final finally float for goto if implements import instanceof
int interface long native new package private protected public return short static strictfp super
switch synchronized this throw throws transient try void volatile while true false null var
record"""
)


class JavaRules(Rules):
    @classmethod
    def refine_kind(
        cls,
        ctx: RuleContext,
        kind: str,
        name: str,
        caps: dict[str, list[Node]],
    ) -> str | None:
        if kind == "constant" and "mods" in caps:
            mods = ctx.text(caps["mods"][0])
            if "static" not in mods or "final" not in mods:
                return None  # instance fields are not definitions worth indexing
        return kind

    @classmethod
    def exported(
        cls,
        ctx: RuleContext,
        node: Node,
        name: str,
        name_node: Node,
        caps: dict[str, list[Node]],
        enclosing: Enclosing | None,
        outer: Node | None,
    ) -> bool:
        mods = caps.get("mods")
        return not (mods and "private" in ctx.text(mods[0]))

    @classmethod
    def imports(cls, ctx: RuleContext, node: Node) -> Iterable[RawImport]:
        text = ctx.text(node)
        text = text.removeprefix("import").strip().rstrip(";").strip()
        if text.startswith("static "):
            text = text[7:].strip()
        text = "".join(text.split())
        module, _, name = text.rpartition(".")
        if module:
            yield (module, (name,), "", node.start_point.row, (), "")


class JavaResolver(Resolver):
    def resolve(self, from_path: str, imp: Import) -> list[str]:
        parts = imp.module.split(".")
        out: list[str] = []
        for name in imp.names or ("",):
            if name == "*":
                suffix = os.sep + os.path.join(*parts)
                for folder in self.view.dirs_named(parts[-1]):
                    if folder.endswith(suffix):
                        out.extend(
                            sorted(f for f in self.view.files_in_dir(folder) if f.endswith(".java"))
                        )
                continue
            # `import a.b.C` -> a/b/C.java; `import static a.b.C.m` -> a/b/C.java.
            for candidate in ([*parts, name], parts):
                if not candidate or not candidate[-1]:
                    continue
                found = self.host.by_suffix(os.path.join(*candidate) + ".java", from_path)
                if found:
                    out.append(found)
                    break
        return out


class JavaRetrieval(Retrieval):
    """A folder is a package: its classes need no import. An on-demand import
    (`import a.b.*;`) makes a whole package's classes visible the same way: the fill
    offers them, after the file's own package."""

    package_folder = True

    @classmethod
    def fill_sources(cls, host: RetrievalHost, fs: FileSymbols) -> list[FillSource]:
        out: list[FillSource] = []
        for imp in fs.imports:
            if imp.names != ("*",):
                continue
            files = tuple(f for f in host.resolve(host.path, imp) if f != host.path)
            if files:
                out.append(FillSource(f"`{imp.module}.*`", files))
        return out


SPECS = (
    LanguageSpec(
        "java",
        (".java",),
        _grammar,
        QUERY,
        KEYWORDS,
        rules=JavaRules,
        resolver=JavaResolver,
        retrieval=JavaRetrieval,
        editor_ids=("java",),
    ),
)
