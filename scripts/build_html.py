"""Build the static HTML edition: every executed notebook as a web page, and a table of contents.

    python scripts/build_html.py            # writes build/html/index.html and one page per notebook
    python scripts/build_html.py --out site

The pages show the committed notebooks as they are, with the outputs of their last full run
(plots, numbers, samples), so the course can be read without Jupyter. Nothing is executed.
Each page starts with links to the previous and next notebook and to the contents; the contents
list every notebook with its sections. Equations are typeset by MathJax, which the page loads
from the web; offline, they show as LaTeX source. Widgets are not interactive in a static page;
the notebooks draw a static figure beside each one.
"""

from __future__ import annotations

import argparse
import html
import re
import sys
from pathlib import Path

import nbformat
from nbconvert import HTMLExporter

ROOT = Path(__file__).resolve().parent.parent
NOTEBOOKS = ROOT / "notebooks"


def title_of(nb: nbformat.NotebookNode) -> str:
    """The notebook's title: its first ``#`` heading."""
    for cell in nb.cells:
        if cell.cell_type == "markdown":
            for line in cell.source.splitlines():
                if line.startswith("# "):
                    return line[2:].strip()
    return ""


SECTION = re.compile(r'<h2 id="([^"]+)">(.*?)<a class="anchor-link"', re.DOTALL)


def sections_of(page: str) -> list[tuple[str, str]]:
    """The ``##`` sections of an exported page as (id, text), with the ids nbconvert gave them."""
    return [(anchor, html.unescape(re.sub(r"<[^>]+>", "", text)).strip()) for anchor, text in SECTION.findall(page)]


def navigation(previous: Path | None, following: Path | None) -> str:
    parts = [f"[← {previous.stem}]({previous.stem}.html)" if previous else "",
             "[contents](index.html)",
             f"[{following.stem} →]({following.stem}.html)" if following else ""]
    return " · ".join(part for part in parts if part)


def build(notebooks: list[Path], out: Path) -> list[Path]:
    """Write one page per notebook and ``index.html`` into ``out``; return the pages written."""
    if not notebooks:
        raise SystemExit("no notebooks to build")
    out.mkdir(parents=True, exist_ok=True)
    exporter = HTMLExporter(template_name="lab")
    entries, pages = [], []
    for i, path in enumerate(notebooks):
        try:
            nb = nbformat.read(path, as_version=4)
        except Exception as error:  # nbformat raises several types for a damaged file
            raise SystemExit(f"cannot read {path.name}: {error}") from error
        title = title_of(nb)
        nav = navigation(notebooks[i - 1] if i else None, notebooks[i + 1] if i + 1 < len(notebooks) else None)
        nb.cells.insert(0, nbformat.v4.new_markdown_cell(nav))
        nb.cells.append(nbformat.v4.new_markdown_cell(nav))
        body, _ = exporter.from_notebook_node(nb, resources={"metadata": {"name": title or path.stem}})
        page = out / f"{path.stem}.html"
        page.write_text(body, encoding="utf-8")
        pages.append(page)
        entries.append((path.stem, title or path.stem, sections_of(body)))
    (out / "index.html").write_text(index_page(entries), encoding="utf-8")
    return pages


def index_page(entries: list[tuple[str, str, list[tuple[str, str]]]]) -> str:
    items = []
    for stem, title, sections in entries:
        links = "".join(f'<li><a href="{stem}.html#{a}">{html.escape(text)}</a></li>' for a, text in sections)
        items.append(f'<li><a href="{stem}.html">{html.escape(title)}</a><ul>{links}</ul></li>')
    return (
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
        "<title>Multimodal Big Models from Scratch</title>"
        "<style>body{font-family:sans-serif;max-width:50em;margin:2em auto;line-height:1.5}"
        "ul ul{font-size:90%}</style></head><body>\n"
        "<h1>Multimodal Big Models from Scratch</h1>\n"
        "<p>The course's notebooks with the outputs of a full run. To run them yourself, see the "
        "README's two commands.</p>\n"
        f"<ol start=\"0\">{''.join(items)}</ol>\n</body></html>\n"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", type=Path, default=ROOT / "build" / "html", help="output folder")
    args = parser.parse_args()
    pages = build(sorted(NOTEBOOKS.glob("[0-9][0-9]_*.ipynb")), args.out)
    print(f"wrote {len(pages)} pages and index.html to {args.out}")


if __name__ == "__main__":
    sys.exit(main())
