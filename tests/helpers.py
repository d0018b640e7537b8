"""What several test files share (not fixtures: those are in conftest.py): paths and the CLI
runner. Test files import it as `helpers` (pytest puts tests/ on sys.path)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
EXAMPLES = ROOT / "examples"


def example_pictures() -> list[tuple[Path, int]]:
    """The shipped sample pictures; each name starts with the digit drawn in it."""
    return [(p, int(p.name[0])) for p in sorted(EXAMPLES.iterdir()) if p.name[0].isdigit()]


def run_cli(
    *args: str, env: dict | None = None, timeout: float = 600
) -> subprocess.CompletedProcess:
    """Run the installed `digitrec` console script, as a user would."""
    exe = Path(sys.executable).parent / "digitrec"
    return subprocess.run(
        [str(exe), *map(str, args)],
        capture_output=True,
        text=True,
        timeout=timeout,
        env={**os.environ, **(env or {})},
    )
