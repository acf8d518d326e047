"""What every ``make_*_notebook.py`` shares: its ``(kind, source)`` cells made into a notebook,
and the notebook written beside the script."""

from __future__ import annotations

from pathlib import Path

import nbformat
from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook


def notebook(cells: list[tuple[str, str]]) -> nbformat.NotebookNode:
    """A notebook of ``cells``: ``("md", text)`` a Markdown cell, ``("code", source)`` a code cell."""
    nb = new_notebook()
    nb.cells = [new_markdown_cell(src) if kind == "md" else new_code_cell(src) for kind, src in cells]
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    nb.metadata["language_info"] = {"name": "python"}
    return nb


def write(nb: nbformat.NotebookNode, path: Path) -> Path:
    nbformat.write(nb, str(path))
    return path
