"""scripts/make_student.py: solutions become stubs, checks stay, and the student edition runs
in a real kernel up to the exercise, whose check then says the exercise is not done yet."""

import contextlib
import importlib.util
import io
import runpy
import sys
from pathlib import Path

import nbformat
import pytest
from nbclient import NotebookClient
from nbclient.exceptions import CellExecutionError
from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook, new_output

ROOT = Path(__file__).resolve().parent.parent
SCRIPT = ROOT / "scripts" / "make_student.py"

spec = importlib.util.spec_from_file_location("make_student", SCRIPT)
make_student = importlib.util.module_from_spec(spec)
sys.modules["make_student"] = make_student  # dataclasses look their module up here
spec.loader.exec_module(make_student)

SOLUTION = '''\
def softmax(x):
    """Softmax over the last dimension of x."""
    # BEGIN SOLUTION subtract the row maximum, exponentiate, normalise
    e = torch.exp(x - x.amax(-1, keepdim=True))
    return e / e.sum(-1, keepdim=True)
    # END SOLUTION'''

CHECK = "check_function(softmax, lambda x: torch.softmax(x, -1), torch.randn(3, 5), name='softmax')"


def tagged(cell, *tags):
    cell.metadata["tags"] = list(tags)
    return cell


def solution_notebook():
    solved = tagged(new_code_cell(SOLUTION, execution_count=2), "solution")
    solved.outputs = [new_output("stream", name="stdout", text="defined\n")]
    check = tagged(new_code_cell(CHECK, execution_count=3), "check")
    check.outputs = [new_output("stream", name="stdout", text="✓ softmax matches the reference\n")]
    return new_notebook(
        cells=[
            new_markdown_cell("# Exercise: softmax"),
            new_code_cell("import torch\nfrom mmcourse.check import check_function", execution_count=1),
            solved,
            check,
            new_code_cell("print('after the check')", execution_count=4),
        ],
        metadata={"kernelspec": {"name": "python3", "display_name": "Python 3", "language": "python"}},
    )


# --------------------------------------------------------------------------- stubs


def test_markers_are_replaced_by_a_raise_at_their_indentation():
    stub = make_student.stub_source(SOLUTION, "cell")
    assert stub == (
        "def softmax(x):\n"
        '    """Softmax over the last dimension of x."""\n'
        '    raise NotImplementedError("exercise: subtract the row maximum, exponentiate, normalise")'
    )
    two_blocks = (
        "a = 1\n# BEGIN SOLUTION\nb = 2\n# END SOLUTION\nc = 3\n# BEGIN SOLUTION\nd = 4\n# END SOLUTION"
    )
    assert make_student.stub_source(two_blocks, "cell") == (
        'a = 1\nraise NotImplementedError("exercise: write your code here")\n'
        'c = 3\nraise NotImplementedError("exercise: write your code here")'
    )


def test_a_solution_cell_without_markers_keeps_only_its_leading_comments():
    stub = make_student.stub_source("# Compute the mean of x.\n# Use no loops.\nm = x.mean()\n# done", "cell")
    assert stub == (
        "# Compute the mean of x.\n# Use no loops.\n"
        'raise NotImplementedError("exercise: write the code for this cell")'
    )


@pytest.mark.parametrize(
    "source, problem",
    [
        ("# BEGIN SOLUTION\nx = 1", r"'# BEGIN SOLUTION' on line 1 is never closed"),
        ("x = 1\n# END SOLUTION", r"'# END SOLUTION' on line 2 has no '# BEGIN SOLUTION' before it"),
        ("# BEGIN SOLUTION\n# BEGIN SOLUTION\n# END SOLUTION", r"line 2 inside the block opened on line 1"),
    ],
)
def test_unbalanced_markers_are_refused(source, problem):
    with pytest.raises(make_student.NotebookError, match=problem):
        make_student.stub_source(source, "cell")


def test_written_answers_are_removed_and_a_cell_cannot_be_both_solution_and_check():
    nb = new_notebook(
        cells=[tagged(new_markdown_cell("Dividing by √d keeps the scores' variance at 1."), "solution")]
    )
    assert make_student.make_student(nb, "nb").stubbed == 1
    assert nb.cells[0].source == "*Write your answer here.*"
    both = new_notebook(cells=[tagged(new_code_cell("x = 1"), "solution", "check")])
    with pytest.raises(make_student.NotebookError, match="tagged both 'solution' and 'check'"):
        make_student.make_student(both, "nb")


# --------------------------------------------------------------------------- the script


def test_script_refuses_broken_notebooks_and_writes_nothing(tmp_path, capsys, monkeypatch):
    good = tmp_path / "00_good.ipynb"
    nbformat.write(solution_notebook(), good)
    leaking = solution_notebook()
    leaking.cells[2].metadata["tags"] = []  # markers, but no solution tag
    nbformat.write(leaking, tmp_path / "01_leak.ipynb")
    (tmp_path / "02_broken.ipynb").write_text("{not json")
    paths = [good, tmp_path / "01_leak.ipynb", tmp_path / "02_broken.ipynb"]
    monkeypatch.setattr(sys, "argv", [str(SCRIPT), *map(str, paths), "--out", str(tmp_path / "student")])
    with pytest.raises(SystemExit) as exit_status:  # run as `python scripts/make_student.py ...`
        runpy.run_path(str(SCRIPT), run_name="__main__")
    assert exit_status.value.code == 1
    errors = capsys.readouterr().err
    assert "01_leak.ipynb, cell 2" in errors and "no 'solution' tag" in errors
    assert "02_broken.ipynb: not a valid notebook" in errors
    assert not (tmp_path / "student").exists()
    assert make_student.main([str(good), "--out", str(tmp_path)]) == 1
    assert "the output folder holds the solution notebook itself" in capsys.readouterr().err


def test_student_edition_has_no_solutions_keeps_checks_and_fails_friendly_in_a_kernel(tmp_path, capsys):
    solved = solution_notebook()
    # The check passes with the solution in place, so what fails below is the stub.
    namespace, printed = {}, io.StringIO()
    with contextlib.redirect_stdout(printed):
        for cell in solved.cells:
            if cell.cell_type == "code":
                exec(cell.source, namespace)
    assert "✓ softmax matches the reference" in printed.getvalue()

    nbformat.write(solved, tmp_path / "03_softmax.ipynb")
    assert make_student.main([str(tmp_path / "03_softmax.ipynb"), "--out", str(tmp_path / "student")]) == 0
    assert "1 solution cell(s) stubbed, 1 check cell(s) kept" in capsys.readouterr().out

    student = nbformat.read(tmp_path / "student" / "03_softmax.ipynb", as_version=4)
    nbformat.validate(student)
    text = "\n".join(cell.source for cell in student.cells)
    assert "torch.exp" not in text and "SOLUTION" not in text
    assert student.cells[3].source == CHECK and student.cells[3].metadata["tags"] == ["check"]
    for cell in student.cells[2:4]:
        assert cell.outputs == [] and cell.execution_count is None
    assert [c.source for c in student.cells[:2]] == [c.source for c in solved.cells[:2]]

    client = NotebookClient(
        student, kernel_name="python3", timeout=120, resources={"metadata": {"path": str(tmp_path)}}
    )
    with pytest.raises(CellExecutionError):
        client.execute()
    ran = [cell.execution_count for cell in student.cells[1:4]]
    assert ran == [1, 2, 3] and student.cells[4].outputs == []  # ran up to the check, then stopped
    (error,) = [o for o in student.cells[3].outputs if o.output_type == "error"]
    assert error.ename == "CheckFailed"
    assert error.evalue == (
        "softmax: this exercise is not done yet: replace the `raise NotImplementedError` with your code"
    )


# --------------------------------------------------------------------------- the real notebooks

COURSE = sorted((ROOT / "notebooks").glob("[0-9][0-9]_*.ipynb"))


@pytest.mark.parametrize("path", COURSE, ids=[p.stem for p in COURSE])
def test_student_edition_of_each_notebook_runs_up_to_its_first_exercise(path):
    student = make_student.read_notebook(path)
    summary = make_student.make_student(student, path.name)
    assert summary.stubbed >= 1 and summary.checks >= 1, f"{path.name} has no exercise with a check"
    first_check = next(i for i, c in enumerate(student.cells) if "check" in c.metadata.get("tags", []))
    assert any("solution" in c.metadata.get("tags", []) for c in student.cells[:first_check])
    client = NotebookClient(student, kernel_name="python3", timeout=300,
                            resources={"metadata": {"path": str(path.parent)}})
    with client.setup_kernel():
        for index, cell in enumerate(student.cells[:first_check]):
            client.execute_cell(cell, index)  # raises, naming the cell, if the lesson part fails
        with pytest.raises(CellExecutionError, match="this exercise is not done yet"):
            client.execute_cell(student.cells[first_check], first_check)
