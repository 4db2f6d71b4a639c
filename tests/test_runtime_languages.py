"""`completion.languages` in the runtime: a document whose language is off never costs
model work, not even the re-warm of "the document being edited" after it is closed."""

from __future__ import annotations

import pathlib
from typing import Any

from lsp_server.completion.stats import Stats
from lsp_server.engine.host import ModelState
from lsp_server.runtime import Runtime
from lsp_server.settings import Settings


class _Index:
    @staticmethod
    def text(path: str) -> str | None:
        p = pathlib.Path(path)
        return p.read_text() if p.exists() else None

    @staticmethod
    def damaged_databases() -> list[str]:
        return []


class _Context:
    """The workspace context, as far as the runtime's document calls go."""

    index = _Index()

    def note_view(self, *args: Any) -> None: ...
    def close_document(self, *args: Any) -> None: ...
    def files_changed(self, *args: Any) -> None: ...
    def update_document(self, *args: Any) -> None: ...
    def stop(self) -> None: ...
    def close(self) -> None: ...


class _Engine:
    """A loaded model, as far as `ready` and closing go."""

    def close(self) -> None: ...


def test_a_note_never_becomes_the_document_kept_warm(tmp_path: pathlib.Path) -> None:
    code, note = tmp_path / "a.py", tmp_path / "notes.md"
    code.write_text("def area(r):\n    return 3.14 * r * r\n")
    note.write_text("# Notes\n\nThe area of a circle\n")
    runtime = Runtime(Settings(), Stats())
    warmed: list[str] = []
    try:
        runtime.host.state = ModelState.READY
        runtime.host.engine = _Engine()  # type: ignore[assignment]  # a loaded model, for `ready`
        runtime.completer = object()  # type: ignore[assignment]
        runtime.warm = lambda key, request, delay_s=0.0: warmed.append(  # type: ignore[method-assign]
            pathlib.Path(request.path).name
        )
        runtime.context = _Context()  # type: ignore[assignment]
        runtime.document_opened(str(code), code.read_text(), "python")
        runtime.document_opened(str(note), note.read_text(), "markdown")

        def typed_in(path: pathlib.Path) -> bool:  # what the server does on a request
            runtime.completion_request(str(path), path.read_text(), 1, 4)
            return runtime.completes(str(path))

        def another_file_changes() -> list[str]:
            warmed.clear()
            runtime.files_changed([(str(tmp_path / "b.py"), False)])
            return list(warmed)

        assert typed_in(code) and another_file_changes() == ["a.py"]
        assert not typed_in(note)
        assert another_file_changes() == ["a.py"]  # still the code, not the note
        runtime.document_closed(str(note))
        assert another_file_changes() == ["a.py"]  # a closed note is not warmed either
        runtime.document_closed(str(code))
        assert another_file_changes() == []  # nothing open: nothing to keep warm
    finally:
        runtime.context = None
        runtime.close()
