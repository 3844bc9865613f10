"""The browser check runs only when asked for by name, so the default test run never sees it.

``pytest`` alone (the test command, CI) collects ``tests`` and ``notebooks`` and passes over this
folder; ``pytest tests/browser`` (what ``python3 scripts/course.py browser-test`` runs) collects
it. It needs the system package ``chromium`` and the ``browser`` extra, which the default
install leaves out.
"""

from __future__ import annotations

from pathlib import Path

HERE = Path(__file__).resolve().parent


def pytest_ignore_collect(collection_path: Path, config) -> bool | None:
    """Skip collecting this folder's tests unless this folder or a file in it was named."""
    named = [(config.invocation_params.dir / arg.split("::")[0]).resolve() for arg in config.args]
    if any(path == HERE or HERE in path.parents for path in named):
        return None
    return True
