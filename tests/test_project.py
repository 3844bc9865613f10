"""The repository keeps its promises: one set of pins, two commands, tests for every module,
notebooks committed with full-run outputs and checked cells, and a browser check kept apart."""

import importlib.util
import json
import os
import re
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parent.parent
PYPROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text())
NOTEBOOKS = sorted((ROOT / "notebooks").glob("*.ipynb"))
SETUP_COMMAND = "python3 scripts/course.py start"
TEST_COMMAND = "python3 scripts/course.py test"
BROWSER_COMMAND = "python3 scripts/course.py browser-test"


def requirements() -> list[str]:
    project = PYPROJECT["project"]
    return project["dependencies"] + project["optional-dependencies"]["dev"]


def test_environment_yml_has_the_same_pins_as_pyproject():
    env = yaml.safe_load((ROOT / "environment.yml").read_text())
    assert env["name"] == "mmcourse"
    pip_sections = [d["pip"] for d in env["dependencies"] if isinstance(d, dict) and "pip" in d]
    assert len(pip_sections) == 1, "environment.yml needs exactly one pip section"
    pip = pip_sections[0]
    assert "pip" in env["dependencies"]
    assert "-e .[dev]" in pip, "the pip section must install the course package itself"
    assert sorted(p for p in pip if not p.startswith("-e")) == sorted(requirements())


def test_torch_is_pinned_exactly():
    # An open range would pull a multi-GB CUDA build onto a CPU machine with the CPU wheel on disk.
    torch_pins = [r for r in PYPROJECT["project"]["dependencies"] if re.match(r"torch\b", r)]
    assert len(torch_pins) == 1 and re.fullmatch(r"torch==\d+\.\d+\.\d+", torch_pins[0]), torch_pins


def test_readme_gives_the_two_commands_and_ci_runs_the_test_command():
    readme = (ROOT / "README.md").read_text()
    assert SETUP_COMMAND in readme and TEST_COMMAND in readme
    ci_lines = [l for l in (ROOT / ".ci" / "run").read_text().splitlines() if l and not l.startswith("#")]
    assert any(l.strip().endswith(TEST_COMMAND) for l in ci_lines), ci_lines


def test_the_browser_check_has_its_own_command_extra_and_readme_section():
    spec = importlib.util.spec_from_file_location("course", ROOT / "scripts" / "course.py")
    course = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(course)
    assert course.COMMANDS["browser-test"] is course.browser_test
    assert (ROOT / course.BROWSER_TESTS / "test_widgets_in_browser.py").is_file()
    browser_extra = PYPROJECT["project"]["optional-dependencies"]["browser"]
    assert len(browser_extra) == 1 and re.fullmatch(r"playwright==\d+\.\d+\.\d+", browser_extra[0]), browser_extra
    readme = (ROOT / "README.md").read_text()
    assert "### Browser check" in readme and BROWSER_COMMAND in readme and "apt-get install chromium" in readme


def test_the_browser_check_is_collected_only_when_named(tmp_path):
    # tests/browser/conftest.py in a throwaway tree laid out like this one: pytest's real
    # collection, without importing the course's test suite.
    (tmp_path / "pytest.ini").write_text("[pytest]\ntestpaths = tests\n")
    browser = tmp_path / "tests" / "browser"
    browser.mkdir(parents=True)
    shutil.copy(ROOT / "tests" / "browser" / "conftest.py", browser)
    (browser / "test_in_browser.py").write_text("def test_widgets():\n    pass\n")
    (tmp_path / "tests" / "test_module.py").write_text("def test_module():\n    pass\n")

    def collected(*args: str) -> list[str]:
        run = subprocess.run(
            [sys.executable, "-m", "pytest", "--collect-only", "-q", "-p", "no:cacheprovider", *args],
            cwd=tmp_path, capture_output=True, text=True,
            env={**os.environ, "PYTEST_DISABLE_PLUGIN_AUTOLOAD": "1"},
        )
        return [line for line in run.stdout.splitlines() if "::" in line]

    assert collected() == ["tests/test_module.py::test_module"]  # the default run, as CI runs it
    assert collected("tests/browser") == ["tests/browser/test_in_browser.py::test_widgets"]
    assert collected("tests/browser/test_in_browser.py") == ["tests/browser/test_in_browser.py::test_widgets"]


def test_every_module_has_a_test_file():
    modules = [p.stem for p in (ROOT / "mmcourse").glob("*.py") if p.stem != "__init__"]
    missing = [m for m in modules if not (ROOT / "tests" / f"test_{m}.py").exists()]
    assert not missing, f"modules without tests/test_<module>.py: {missing}"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_notebook_is_committed_with_full_run_outputs(path):
    nb = json.loads(path.read_text())
    code = [c for c in nb["cells"] if c["cell_type"] == "code"]
    assert code and all(c["execution_count"] is not None for c in code), "run every cell before committing"
    counts = [c["execution_count"] for c in code]
    assert counts == list(range(1, len(code) + 1)), "cells must be run top to bottom on a fresh kernel"
    for cell in code:
        for output in cell["outputs"]:
            assert output["output_type"] != "error", f"a stored output is an error: {output.get('ename')}"
            text = json.dumps(output)
            assert not re.search(r"/(tmp|root|home|Users|work)/[\w.-]+", text), "an output shows a machine path"
            assert "MMCOURSE_MODE=smoke" not in text and "mode: smoke" not in text, "outputs must come from a full run"
    checked = [c for c in code if "nbval-check-output" in c["metadata"].get("tags", [])]
    assert checked, "tag at least one deterministic cell nbval-check-output"
    assert nb["metadata"]["kernelspec"]["name"] == "python3"
