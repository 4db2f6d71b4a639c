"""A notebook as pygls keeps it (LSP 3.17 notebook sync: one notebook document whose
cells are text documents), read into the plain `Notebook` that `lsp_server/notebooks.py`
completes a cell with."""

from __future__ import annotations

from urllib.parse import unquote

from lsprotocol import types
from pygls.workspace import Workspace

from lsp_server.notebooks import Cell, Notebook
from lsp_server.protocol.language_server import path_of
from lsp_server.protocol.mirror import with_lf_line_breaks


def notebook_of(workspace: Workspace, cell_uri: str) -> Notebook | None:
    """The notebook holding the cell `cell_uri` (None when the document is not a notebook
    cell)."""
    notebook = workspace.get_notebook_document(cell_uri=cell_uri)
    if notebook is None:
        return None
    documents = workspace.text_documents
    cells: list[Cell] = []
    for cell in notebook.cells:
        key = unquote(cell.document)  # (pygls keys documents unquoted)
        doc = documents.get(key)
        if doc is None:
            continue
        code = cell.kind == types.NotebookCellKind.Code
        text = with_lf_line_breaks(doc.source) if code else ""
        cells.append(Cell(key, text, doc.language_id or "", code))
    return Notebook(path_of(notebook.uri), unquote(notebook.uri.rstrip("/")), cells)
