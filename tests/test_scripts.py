"""The course scripts that teachers run: the course map's measured times and the HTML edition."""

import importlib.util
import json
import multiprocessing
import sys
from pathlib import Path

import nbformat
import pytest
from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook, new_output

ROOT = Path(__file__).resolve().parent.parent


def load_script(name: str):
    spec = importlib.util.spec_from_file_location(name, ROOT / "scripts" / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


course_map = load_script("course_map")
build_html = load_script("build_html")

README = """intro
<!-- course-map:start -->
| # | notebook | result | smoke, CPU | full, CPU | full, GPU |
|---|---|---|---|---|---|
| 00 | welcome | 90 % | old | old | old |
| 01 | attention | ok |  |  |  |
<!-- course-map:end -->
after
"""


# --------------------------------------------------------------------------- course map


def test_record_stores_each_run_and_replaces_an_older_one(tmp_path):
    path = tmp_path / "timings.json"
    course_map.record("00_welcome", "smoke", 12.34, 300.4, path)
    course_map.record("00_welcome", "full", 95.0, 512.0, path)
    course_map.record("00_welcome", "smoke", 10.0, 290.0, path)
    timings = json.loads(path.read_text())
    kind = course_map.machine()[0]
    assert timings["00_welcome"]["smoke"][kind]["seconds"] == 10.0
    assert timings["00_welcome"]["full"][kind]["peak_mib"] == 512
    assert not list(tmp_path.glob("*.partial*"))


def _record_many(path: str, notebook: str) -> None:
    for seconds in range(20):
        course_map.record(notebook, "smoke", float(seconds), 100.0, Path(path))


@pytest.mark.skipif(course_map.fcntl is None, reason="records are locked with fcntl, which this system lacks")
def test_records_written_at_the_same_time_all_survive(tmp_path):
    """Parallel `run_notebooks.py --record` runs: each one's read-modify-write must keep the others' entries."""
    path = tmp_path / "timings.json"
    names = [f"{i:02d}_notebook" for i in range(6)]
    context = multiprocessing.get_context("fork")
    workers = [context.Process(target=_record_many, args=(str(path), name)) for name in names]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join(timeout=120)
        assert worker.exitcode == 0
    timings = json.loads(path.read_text())
    assert sorted(timings) == names, "an entry written by one process was lost to another's write"
    assert all(timings[name]["smoke"][course_map.machine()[0]]["seconds"] == 19.0 for name in names)


def test_render_fills_only_the_measured_columns():
    timings = {"00_welcome": {"smoke": {"cpu": {"seconds": 12.4}}, "full": {"cpu": {"seconds": 150.0}}}}
    out = course_map.render(README, timings)
    assert "| 00 | welcome | 90 % | 12 s | 2.5 min |  |" in out
    assert "| 01 | attention | ok |  |  |  |" in out  # nothing measured: empty, not a guess
    assert out.startswith("intro\n") and out.endswith("after\n")
    assert course_map.render(out, timings) == out


def test_render_says_what_is_wrong_with_the_table():
    with pytest.raises(ValueError, match="no course map between"):
        course_map.render("no table here", {})
    with pytest.raises(ValueError, match=r"needs the columns \['full, GPU'\]"):
        course_map.render(README.replace("full, GPU", "GPU"), {})


def test_readme_course_map_shows_the_recorded_times():
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    assert course_map.render(readme, course_map.load()) == readme, "run python scripts/course_map.py"


def test_every_notebook_has_recorded_smoke_and_full_cpu_times():
    timings = course_map.load()
    for path in sorted((ROOT / "notebooks").glob("[0-9][0-9]_*.ipynb")):
        for mode in ("smoke", "full"):
            assert "cpu" in timings.get(path.stem, {}).get(mode, {}), f"no {mode} CPU time recorded for {path.name}"


# --------------------------------------------------------------------------- HTML edition


def small_notebook(title: str) -> nbformat.NotebookNode:
    plot = new_code_cell("plot()", execution_count=1)
    plot.outputs = [new_output("display_data", data={"image/png": "iVBORw0KGgo=", "text/plain": "<Figure>"})]
    return new_notebook(cells=[
        new_markdown_cell(f"# {title}\n\nIntro."),
        new_markdown_cell("## 1. First part: `code`"),
        plot,
        new_markdown_cell("## 2. Second part"),
    ])


def test_html_edition_has_pages_contents_and_working_section_links(tmp_path):
    sources = []
    for name, title in [("00_a", "00 · First"), ("01_b", "01 · Second")]:
        path = tmp_path / f"{name}.ipynb"
        nbformat.write(small_notebook(title), path)
        sources.append(path)
    out = tmp_path / "html"
    pages = build_html.build(sources, out)
    assert [p.name for p in pages] == ["00_a.html", "01_b.html"]
    index = (out / "index.html").read_text(encoding="utf-8")
    assert '<a href="00_a.html">00 · First</a>' in index
    assert ">1. First part: code</a>" in index
    first = pages[0].read_text(encoding="utf-8")
    for anchor in build_html.SECTION.findall(first):
        assert f'href="00_a.html#{anchor[0]}"' in index
    assert len(build_html.sections_of(first)) == 2
    assert "data:image/png;base64,iVBORw0KGgo=" in first  # the stored plot travels with the page
    assert "01_b.html" in first and "contents" in first and "00_a.html" in pages[1].read_text(encoding="utf-8")


def test_html_edition_names_a_damaged_notebook(tmp_path):
    bad = tmp_path / "00_bad.ipynb"
    bad.write_text("{ not json")
    with pytest.raises(SystemExit, match="cannot read 00_bad.ipynb"):
        build_html.build([bad], tmp_path / "html")
