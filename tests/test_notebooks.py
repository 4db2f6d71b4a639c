"""A notebook cell is completed as part of its notebook (lsp_server/notebooks.py): the
code cells of its language joined, the cursor moved down by the lines above it."""

from __future__ import annotations

from lsp_server.completion.stats import Stats
from lsp_server.notebooks import Cell, Notebook, cell_request, join_cells
from lsp_server.runtime import Runtime
from lsp_server.settings import Settings

NOTEBOOK = Notebook(
    "/ws/analysis.ipynb",
    "file:///ws/analysis.ipynb",
    [
        Cell("cell:0", "import numpy as np", "python", True),
        Cell("cell:1", "# Notes\nsome *markdown*", "markdown", False),
        Cell("cell:2", "%%bash\nls", "shellscript", True),
        Cell("cell:3", "x = np.zeros(3)\ny = ", "python", True),
    ],
)


def test_the_code_cells_of_the_cells_language_are_joined() -> None:
    view = join_cells(NOTEBOOK, "cell:3")
    assert view is not None
    assert view.text == "import numpy as np\n\nx = np.zeros(3)\ny = "
    assert view.first_line == 2
    assert view.text.split("\n")[view.first_line] == "x = np.zeros(3)"


def test_a_cell_left_out_has_no_view() -> None:
    assert join_cells(NOTEBOOK, "cell:1") is None  # Markdown
    assert join_cells(NOTEBOOK, "cell:9") is None  # not open


def test_the_request_names_the_notebook_never_the_cell() -> None:
    runtime = Runtime(Settings(), Stats())
    runtime.roots = ["/ws"]
    request, first_line = cell_request(
        runtime, NOTEBOOK, "vscode-notebook-cell:/ws/analysis.ipynb#3", "cell:3", "", 1, 4
    )
    assert first_line == 2
    assert (request.line, request.character) == (3, 4)
    assert request.display_path == "analysis.ipynb"
    assert request.repo_name == "ws"
    assert request.context_path == "/ws/analysis.ipynb"
    alone, first = cell_request(runtime, NOTEBOOK, "/x", "cell:1", "# Notes", 0, 1)
    assert (first, alone.text, alone.display_path) == (0, "# Notes", "analysis.ipynb")
    runtime.close()
