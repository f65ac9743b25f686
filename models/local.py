"""Where a local run keeps its files: the one definition, below both the dashboard and lambda/ tooling (DESIGN's arrows)."""

from __future__ import annotations

import os
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
# the local API's logs, its owner-only key file and the extracted package; LOCAL_API_DIR moves it (tests use a tmp dir)
LOCAL_DIR = Path(os.environ.get("LOCAL_API_DIR") or ROOT / ".local")
