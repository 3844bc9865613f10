"""Settings for every test run: smoke mode, a headless plot backend, and no network.

The notebook kernels that nbval starts inherit this environment, so they run offline and
in smoke mode too.
"""

import os
import sys
from pathlib import Path

GUARD_DIR = Path(__file__).parent / "tests" / "offline"

os.environ.setdefault("MMCOURSE_MODE", "smoke")
os.environ.setdefault("MPLBACKEND", "Agg")
os.environ["MMCOURSE_OFFLINE"] = "1"
os.environ["PYTHONPATH"] = os.pathsep.join(
    p for p in (str(GUARD_DIR), os.environ.get("PYTHONPATH", "")) if p
)
sys.path.insert(0, str(GUARD_DIR))

import offline_guard  # noqa: E402  (needs the path above)

offline_guard.install()
