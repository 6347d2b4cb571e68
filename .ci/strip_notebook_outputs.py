"""Clear the heavy outputs of executed notebooks before they are committed (DESIGN.md, Notebooks).

Inline animations (every frame as an image) and widget views are dropped — running the
notebook re-creates them — as are progress bars on stderr. Static figures, tables and
printed results stay. Usage: python .ci/strip_notebook_outputs.py notebooks/*.ipynb
"""
import sys

import nbformat

HEAVY = ("application/vnd.jupyter.widget-view+json",)


def keep(output) -> bool:
    if output.get("output_type") == "stream":
        return output.get("name") != "stderr"
    data = output.get("data", {})
    if any(kind in data for kind in HEAVY):
        return False
    html = data.get("text/html", "")
    return not (isinstance(html, str) and "<script" in html and "anim" in html.lower())


for path in sys.argv[1:]:
    book = nbformat.read(path, as_version=4)
    for cell in book.cells:
        if cell.cell_type == "code":
            cell.outputs = [o for o in cell.outputs if keep(o)]
    book.metadata.pop("widgets", None)
    nbformat.write(book, path)
    print("stripped", path)
