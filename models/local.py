"""Where a local run keeps its files: the one definition, below both the dashboard and lambda/ tooling (DESIGN's arrows)."""

from __future__ import annotations

import json
import os
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
# the local API's logs, its owner-only key file and the extracted package; LOCAL_API_DIR moves it (tests use a tmp dir)
LOCAL_DIR = Path(os.environ.get("LOCAL_API_DIR") or ROOT / ".local")


def saved_key(local_dir: Path) -> str | None:
    """The key the last local API served, so the README's `$KEY` keeps working across runs; only from a file
    nobody else can read (a key that sat world-readable is not reused)."""
    path = local_dir / "local_api.json"
    try:
        st = path.stat()
        if st.st_uid != os.getuid() or st.st_mode & 0o077:
            return None
        key = json.loads(path.read_text()).get("api_key")
    except (OSError, ValueError, AttributeError):
        return None
    return key if isinstance(key, str) and len(key) >= 16 else None
