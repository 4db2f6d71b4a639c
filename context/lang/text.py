"""Languages read as text: no grammar here, so no definitions or imports, but their code
is context like any other (windows similar to the code at the cursor, recently edited
and viewed regions), as neighbouring tabs are for Copilot. Programming languages only:
prose, markup and data files are not source (``context.lang.markup``).

A language moves from here to a file of its own when it gets a grammar.
"""

from __future__ import annotations

from context.lang import LanguageSpec

SPECS = (
    LanguageSpec("ruby", (".rb", ".rake", ".gemspec")),
    LanguageSpec("php", (".php",)),
    LanguageSpec("csharp", (".cs",)),
    LanguageSpec("kotlin", (".kt", ".kts")),
    LanguageSpec("swift", (".swift",)),
    LanguageSpec("scala", (".scala", ".sc")),
    LanguageSpec("groovy", (".groovy", ".gradle")),
    LanguageSpec("dart", (".dart",)),
    LanguageSpec("objective-c", (".m", ".mm")),
    LanguageSpec("elixir", (".ex", ".exs")),
    LanguageSpec("erlang", (".erl", ".hrl")),
    LanguageSpec("haskell", (".hs",)),
    LanguageSpec("ocaml", (".ml", ".mli")),
    LanguageSpec("fsharp", (".fs", ".fsi", ".fsx")),
    LanguageSpec("clojure", (".clj", ".cljs", ".cljc")),
    LanguageSpec("elm", (".elm",)),
    LanguageSpec("julia", (".jl",)),
    LanguageSpec("r", (".r",)),
    LanguageSpec("perl", (".pl", ".pm")),
    LanguageSpec("shell", (".sh", ".bash", ".zsh"), fence="bash"),
    LanguageSpec("powershell", (".ps1", ".psm1")),
    LanguageSpec("sql", (".sql",)),
    LanguageSpec("zig", (".zig",)),
    LanguageSpec("nim", (".nim",)),
    LanguageSpec("crystal", (".cr",)),
    LanguageSpec("solidity", (".sol",)),
    LanguageSpec("vue", (".vue",)),
    LanguageSpec("svelte", (".svelte",)),
)
