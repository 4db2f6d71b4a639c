"""A notebook cell completed with the code of the whole notebook.

VS Code syncs a Jupyter notebook as one notebook document whose cells are text
documents (LSP 3.17 notebook sync; pygls keeps both). A cell alone is a few lines: the
imports, the data loaded and the functions defined in the cells above are what the code
in it uses. So a cell is completed as part of a virtual document: the notebook's code
cells of the cell's language, in order, each separated by a blank line (Markdown and
other languages' cells left out), the cursor moved down by the lines above the cell,
and the suggestion moved back up.
"""

from __future__ import annotations

from dataclasses import dataclass
from urllib.parse import unquote

from lsprotocol import types
from pygls.workspace import Workspace

from lsp_server.protocol.mirror import with_lf_line_breaks


@dataclass(frozen=True, slots=True)
class NotebookView:
    notebook_uri: str
    text: str  # the code cells joined
    first_line: int  # the line of `text` where the cell starts


def notebook_view(workspace: Workspace, cell_uri: str) -> NotebookView | None:
    """The virtual document of the notebook holding the cell ``cell_uri``, or None when
    the document is not a notebook cell."""
    notebook = workspace.get_notebook_document(cell_uri=cell_uri)
    if notebook is None:
        return None
    key = unquote(cell_uri)
    documents = workspace.text_documents
    cell_doc = documents.get(key)
    if cell_doc is None:
        return None
    language = cell_doc.language_id
    parts: list[str] = []
    line = 0
    first_line = -1
    for cell in notebook.cells:
        uri = unquote(cell.document)
        doc = documents.get(uri)
        if doc is None or cell.kind != types.NotebookCellKind.Code:
            continue
        if uri != key and doc.language_id != language:
            continue
        text = with_lf_line_breaks(doc.source)
        if uri == key:
            first_line = line
        parts.append(text)
        line += text.count("\n") + 2  # its lines, then the blank line between cells
    if first_line < 0:
        return None
    return NotebookView(notebook.uri, "\n\n".join(parts), first_line)
