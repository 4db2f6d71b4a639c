"""What the server keeps about open documents besides their text (the text is pygls's,
see `protocol/mirror.py`): the editor's language id of each, the last cursor position in
each, which one is being edited (the document kept warm), and where a warm-up goes.

Threads: the event loop opens and closes documents and records the cursor of each
completion request; the documents thread (`Runtime.documents`, which applies edits to
the index in order) reads them to warm the engine, and records the position it warms as
a request would. Both go through one lock, so either may call any method.
"""

from __future__ import annotations

import threading

from lsp_server.completion.postprocess import Suggestion


class OpenDocuments:
    """Language ids, last cursor positions and the active document."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._language_ids: dict[str, str] = {}  # open document -> the editor's language id
        self._positions: dict[str, tuple[int, int]] = {}  # last cursor per document
        self._active = ""  # the last document opened, asked for a completion or warmed

    def opened(self, path: str, language_id: str) -> None:
        """`path` was opened: the editor shows it, so it is the one to keep warm until a
        request says where the user is."""
        with self._lock:
            self._language_ids[path] = language_id
            self._active = path

    def closed(self, path: str) -> None:
        """Forget `path`; when it was the active document, none is (nothing to keep warm)."""
        with self._lock:
            self._language_ids.pop(path, None)
            self._positions.pop(path, None)
            if self._active == path:
                self._active = ""

    def paths(self) -> list[str]:
        """The open documents."""
        with self._lock:
            return list(self._language_ids)

    def language_id(self, path: str) -> str:
        """The editor's language id of an open document ("" when not known)."""
        with self._lock:
            return self._language_ids.get(path, "")

    def cursor_at(self, path: str, line: int, character: int) -> None:
        """A completion was asked (or warmed) at this position: `path` becomes the active
        document, and a later warm-up of it starts from here."""
        with self._lock:
            self._positions[path] = (line, character)
            self._active = path

    @property
    def active(self) -> str:
        """The document being edited ("" when none)."""
        return self._active

    def warm_position(self, path: str, text: str) -> tuple[int, int]:
        """Where to warm `path` whose text is now `text`: its last cursor, kept inside
        the text (it may have shrunk since), or its start."""
        with self._lock:
            line, character = self._positions.get(path, (0, 0))
        lines = text.split("\n")
        line = min(line, len(lines) - 1)
        return line, min(character, len(lines[line]))


def after_accepting(text: str, suggestion: Suggestion) -> tuple[str, int, int]:
    """The text once `suggestion` is accepted, and the cursor after it (line, character):
    what a speculative prefetch completes next."""
    lines = text.split("\n")
    line = lines[suggestion.line]
    inserted = line[: suggestion.character] + suggestion.text + line[suggestion.end_character :]
    new_lines = lines[: suggestion.line] + inserted.split("\n") + lines[suggestion.line + 1 :]
    last = suggestion.text.split("\n")
    new_line = suggestion.line + len(last) - 1
    new_char = (suggestion.character if len(last) == 1 else 0) + len(last[-1])
    return "\n".join(new_lines), new_line, new_char
