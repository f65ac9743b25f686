"""Moved: the deployer is the top-level package deployer/ now. Run `python -m deployer`; this forwards to it."""

import os
import sys
from pathlib import Path

if __name__ == "__main__":  # never on import: lambda/ is on the deployer's own path
    print("lambda/deploy.py moved to deployer/: run `python -m deployer` (forwarding)", file=sys.stderr)
    path = os.pathsep.join([str(Path(__file__).resolve().parents[1]), os.environ.get("PYTHONPATH", "")])
    os.execve(sys.executable, [sys.executable, "-m", "deployer", *sys.argv[1:]], {**os.environ, "PYTHONPATH": path})
