"""Loaded by every Python started during a test run (this folder is on PYTHONPATH then)."""

import os

if os.environ.get("MMCOURSE_OFFLINE") == "1":
    import offline_guard

    offline_guard.install()
