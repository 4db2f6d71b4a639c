"""A notebook cell completed with the code of the whole notebook, as plain Python.

VS Code syncs a Jupyter notebook as one notebook document whose cells are text
documents (LSP 3.17 notebook sync; `protocol/notebooks.py` reads them into a
`Notebook`). A cell alone is a few lines: the imports, the data loaded and the functions
defined in the cells above are what the code in it uses. So a cell is completed as part
of a virtual document: the notebook's code cells of the cell's language, in order, each
separated by a blank line (Markdown and other languages' cells left out), the cursor
moved down by the lines above the cell, and the suggestion moved back up. The model is
shown the notebook's path, never a cell's URI.
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from context.pack import document_name
from lsp_server.completion.service import CompletionRequest

if TYPE_CHECKING:  # (the runtime imports nothing of this module)
    from lsp_server.runtime import Runtime


@dataclass(frozen=True, slots=True)
class Cell:
    key: str  # the cell document's URI, unquoted
    text: str  # line breaks as \n
    language_id: str
    code: bool  # a code cell (not Markdown)


@dataclass(frozen=True, slots=True)
class Notebook:
    path: str  # the notebook's real path (its URI when it is not a file)
    name: str  # its URI, unquoted, no trailing "/": the name shown when it is not a file
    cells: Sequence[Cell]  # in order; those the editor has not opened left out


@dataclass(frozen=True, slots=True)
class NotebookView:
    text: str  # the code cells joined
    first_line: int  # the line of `text` where the cell starts


def join_cells(notebook: Notebook, cell_key: str) -> NotebookView | None:
    """The virtual document of `notebook` around the cell `cell_key`, or None when that
    cell is left out (not open, not code)."""
    own = next((cell for cell in notebook.cells if cell.key == cell_key), None)
    if own is None:
        return None
    parts: list[str] = []
    line = 0
    first_line = -1
    for cell in notebook.cells:
        if not cell.code or (cell.key != cell_key and cell.language_id != own.language_id):
            continue
        if cell.key == cell_key:
            first_line = line
        parts.append(cell.text)
        line += cell.text.count("\n") + 2  # its lines, then the blank line between cells
    if first_line < 0:
        return None
    return NotebookView("\n\n".join(parts), first_line)


def display_path(runtime: Runtime, notebook: Notebook) -> str:
    """The path the model is shown for any cell of `notebook`."""
    if os.path.isabs(notebook.path):
        return runtime.display_path(notebook.path)
    return document_name(notebook.name)


def cell_request(
    runtime: Runtime,
    notebook: Notebook,
    cell_path: str,
    cell_key: str,
    cell_text: str,
    line: int,
    character: int,
) -> tuple[CompletionRequest, int]:
    """The completion request at (`line`, `character`) of a cell, and how many lines of
    the text completed come before the cell's first (the cells above it). A cell
    `join_cells` leaves out is completed alone, still under the notebook's name."""
    view = join_cells(notebook, cell_key)
    first_line = view.first_line if view is not None else 0
    request = runtime.completion_request(
        cell_path, view.text if view is not None else cell_text, first_line + line, character
    )
    is_file = os.path.isabs(notebook.path)
    root = runtime.root_of(notebook.path) if is_file else None
    request = dataclasses.replace(
        request,
        display_path=display_path(runtime, notebook),
        repo_name=os.path.basename(root) if root else "",
        # Retrieval reads the joined cells as the notebook file's text: its imports
        # resolve from the notebook's folder.
        context_path=notebook.path if is_file else "",
    )
    return request, first_line
