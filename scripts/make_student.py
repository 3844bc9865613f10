"""Make the student edition of the notebooks: solutions replaced by stubs, checks kept.

    python scripts/make_student.py                       # notebooks/*.ipynb -> student/
    python scripts/make_student.py notebooks/01_attention.ipynb --out handout/

How a solution notebook marks its exercises (cell tags are set in JupyterLab's property
inspector, or in the cell's ``metadata.tags``):

- A code cell tagged ``solution`` holds a worked exercise. If it contains marker lines, every
  block from ``# BEGIN SOLUTION`` to ``# END SOLUTION`` (markers included) becomes one line
  ``raise NotImplementedError("exercise: ...")`` at the indentation of the BEGIN marker; the
  rest of the cell (signature, docstring, comments) stays. Text after the BEGIN marker, as in
  ``# BEGIN SOLUTION subtract the row maximum first``, becomes the exercise's message.
  A ``solution`` cell without markers keeps only its leading comment lines, then the raise.
- A markdown cell tagged ``solution`` (a written answer) becomes an invitation to answer.
- Cells tagged ``check`` are kept; ``mmcourse.check`` reports a stub as "not done yet".
- Outputs of solution and check cells are cleared: they came from the solutions.

Every other cell is copied as it is. Nothing is written if any notebook is malformed, has
unbalanced markers, or has markers in a cell not tagged ``solution``; the problems are
listed and the exit status is 1.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from dataclasses import dataclass
from pathlib import Path

import nbformat

ROOT = Path(__file__).resolve().parent.parent
BEGIN = re.compile(r"^(?P<indent>\s*)#\s*BEGIN SOLUTION\b[\s:]*(?P<text>.*)$")
END = re.compile(r"^\s*#\s*END SOLUTION\b")
DEFAULT_TASK = "write your code here"
WHOLE_CELL_TASK = "write the code for this cell"
ANSWER_PROMPT = "*Write your answer here.*"


class NotebookError(Exception):
    """A notebook that cannot be turned into a student edition, and why."""


@dataclass
class Summary:
    stubbed: int = 0
    checks: int = 0


def _raise_line(indent: str, task: str) -> str:
    return f"{indent}raise NotImplementedError({json.dumps('exercise: ' + task, ensure_ascii=False)})"


def stub_source(source: str, where: str) -> str:
    """The student version of a solution cell's source (see the module docstring)."""
    lines = source.splitlines()
    if not any(BEGIN.match(line) or END.match(line) for line in lines):
        comments = []
        for line in lines:
            if not line.lstrip().startswith("#"):
                break
            comments.append(line)
        return "\n".join([*comments, _raise_line("", WHOLE_CELL_TASK)])
    kept, opened_at = [], None
    for number, line in enumerate(lines, start=1):
        begin, end = BEGIN.match(line), END.match(line)
        if begin:
            if opened_at is not None:
                raise NotebookError(
                    f"{where}: '# BEGIN SOLUTION' on line {number} inside the block opened on line {opened_at}"
                )
            opened_at = number
            kept.append(_raise_line(begin["indent"], begin["text"].strip() or DEFAULT_TASK))
        elif end:
            if opened_at is None:
                raise NotebookError(
                    f"{where}: '# END SOLUTION' on line {number} has no '# BEGIN SOLUTION' before it"
                )
            opened_at = None
        elif opened_at is None:
            kept.append(line)
    if opened_at is not None:
        raise NotebookError(
            f"{where}: '# BEGIN SOLUTION' on line {opened_at} is never closed by '# END SOLUTION'"
        )
    return "\n".join(kept)


def make_student(nb: nbformat.NotebookNode, name: str) -> Summary:
    """Turn ``nb`` (a solution notebook, changed in place) into its student edition."""
    summary = Summary()
    for index, cell in enumerate(nb.cells):
        tags = set(cell.get("metadata", {}).get("tags", []))
        where = f"{name}, cell {index}" + (f" (id {cell['id']})" if "id" in cell else "")
        has_markers = cell.cell_type == "code" and any(
            BEGIN.match(line) or END.match(line) for line in cell.source.splitlines()
        )
        if has_markers and "solution" not in tags:
            raise NotebookError(
                f"{where}: has solution markers but no 'solution' tag, so its solution would leak"
            )
        if "solution" in tags and "check" in tags:
            raise NotebookError(
                f"{where}: is tagged both 'solution' and 'check'; a check must not hold a solution"
            )
        if "solution" in tags:
            if cell.cell_type == "code":
                cell.source = stub_source(cell.source, where)
            elif cell.cell_type == "markdown":
                cell.source = ANSWER_PROMPT
            else:
                raise NotebookError(f"{where}: a {cell.cell_type} cell cannot be tagged 'solution'")
            summary.stubbed += 1
        if "check" in tags:
            summary.checks += 1
        if cell.cell_type == "code" and tags & {"solution", "check"}:
            cell.outputs = []
            cell.execution_count = None
    return summary


def read_notebook(path: Path) -> nbformat.NotebookNode:
    try:
        nb = nbformat.read(path, as_version=4)
        nbformat.validate(nb)
    except FileNotFoundError:
        raise NotebookError(f"{path}: no such file") from None
    except Exception as error:  # nbformat raises several unrelated types for a broken file
        first_line = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
        raise NotebookError(f"{path}: not a valid notebook ({type(error).__name__}: {first_line})") from None
    return nb


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.strip().splitlines()[0])
    parser.add_argument(
        "notebooks", nargs="*", type=Path, help="solution notebooks (default: notebooks/*.ipynb)"
    )
    parser.add_argument(
        "--out", type=Path, default=ROOT / "student", help="output folder (default: student/)"
    )
    args = parser.parse_args(argv)

    paths = args.notebooks or sorted((ROOT / "notebooks").glob("*.ipynb"))
    if not paths:
        print("error: no notebooks to convert", file=sys.stderr)
        return 1
    out = args.out.resolve()
    problems, editions = [], []
    for path in paths:
        if path.resolve().parent == out:
            problems.append(
                f"{path}: the output folder holds the solution notebook itself; choose another --out"
            )
            continue
        try:
            nb = read_notebook(path)
            editions.append((path, nb, make_student(nb, str(path))))
        except NotebookError as error:
            problems.append(str(error))
    if problems:
        print("error: no student edition written:", *problems, sep="\n  ", file=sys.stderr)
        return 1
    out.mkdir(parents=True, exist_ok=True)
    for path, nb, summary in editions:
        nbformat.write(nb, out / path.name)
        print(f"{path.name}: {summary.stubbed} solution cell(s) stubbed, {summary.checks} check cell(s) kept")
    print(f"wrote {len(editions)} student notebook(s) to {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
