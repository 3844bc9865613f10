"""The course's commands: set up and open the course, or run every test.

    python3 scripts/course.py start   # install everything into .venv, open JupyterLab on notebooks/
    python3 scripts/course.py test    # install if needed, run the package tests and every notebook
    python3 scripts/course.py browser-test  # the widgets in headless Chromium (needs `chromium`)

Only the standard library is used here, so it runs before anything is installed. The virtual
environment lives in ``.venv`` at the top of the repository and is reinstalled whenever
``pyproject.toml`` changes. Extra arguments go to JupyterLab (``start``) or pytest (``test``,
``browser-test``).
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import sys
import venv
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
VENV = ROOT / ".venv"
STAMP = VENV / "mmcourse-installed.sha256"
BROWSER_STAMP = VENV / "mmcourse-browser-installed.sha256"
BROWSER_TESTS = "tests/browser"
MIN_PYTHON = (3, 10)


def venv_executable(name: str) -> Path:
    folder = "Scripts" if os.name == "nt" else "bin"
    suffix = ".exe" if os.name == "nt" else ""
    return VENV / folder / f"{name}{suffix}"


def project_fingerprint() -> str:
    return hashlib.sha256((ROOT / "pyproject.toml").read_bytes()).hexdigest()


def ensure_installed(extras: str = "dev", stamp: Path = STAMP) -> Path:
    """Create .venv and install the course with ``extras`` into it, unless it is already up to date."""
    if sys.version_info < MIN_PYTHON:
        sys.exit(
            f"mmcourse needs Python {'.'.join(map(str, MIN_PYTHON))} or newer, "
            f"this is {sys.version.split()[0]} ({sys.executable})"
        )
    python = venv_executable("python")
    if not python.exists():
        print(f"Creating the virtual environment in {VENV.name}/ ...", flush=True)
        venv.create(VENV, with_pip=True)
    if stamp.exists() and stamp.read_text().strip() == project_fingerprint():
        return python
    print("Installing the course and its tools (first time: a few minutes) ...", flush=True)
    subprocess.run(
        [str(python), "-m", "pip", "install", "--quiet", "--disable-pip-version-check",
         "-e", f"{ROOT}[{extras}]"],
        check=True,
    )
    stamp.write_text(project_fingerprint() + "\n")
    return python


def start(extra: list[str]) -> int:
    ensure_installed()
    return subprocess.call([str(venv_executable("jupyter")), "lab", *extra], cwd=ROOT / "notebooks")


def test(extra: list[str]) -> int:
    python = ensure_installed()
    env = dict(os.environ)
    env.setdefault("MMCOURSE_MODE", "smoke")
    return subprocess.call([str(python), "-m", "pytest", *extra], cwd=ROOT, env=env)


def find_chromium() -> str | None:
    return os.environ.get("MMCOURSE_CHROMIUM") or shutil.which("chromium") or shutil.which("chromium-browser")


def browser_test(extra: list[str]) -> int:
    """Run the browser check: JupyterLab and the attention explorer in headless Chromium."""
    chromium = find_chromium()
    if chromium is None:
        print(
            "The browser check needs Chromium, and none was found on PATH.\n"
            "Install it with `sudo apt-get install chromium` (Debian/Ubuntu; the package is\n"
            "`chromium-browser` on some systems), or point MMCOURSE_CHROMIUM at a Chromium binary."
        )
        return 1
    # Playwright drives the system Chromium, so its own browser download is never needed.
    python = ensure_installed("dev,browser", BROWSER_STAMP)
    env = dict(os.environ, MMCOURSE_CHROMIUM=chromium)
    env.setdefault("MMCOURSE_MODE", "smoke")
    return subprocess.call([str(python), "-m", "pytest", BROWSER_TESTS, *extra], cwd=ROOT, env=env)


COMMANDS = {"start": start, "test": test, "browser-test": browser_test}


def main(argv: list[str]) -> int:
    if not argv or argv[0] not in COMMANDS:
        print(__doc__.strip().splitlines()[0])
        print(f"usage: python3 {Path(__file__).relative_to(ROOT)} {{{','.join(COMMANDS)}}} [args ...]")
        return 2
    try:
        return COMMANDS[argv[0]](argv[1:])
    except subprocess.CalledProcessError as error:
        print(f"\nThe install step failed (exit code {error.returncode}); see the pip messages above.")
        return error.returncode or 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
