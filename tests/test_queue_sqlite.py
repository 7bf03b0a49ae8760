"""The embedded demo database keeps the queue correct too: 50 racing reviewers on SQLite."""

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def test_fifty_reviewers_on_sqlite_never_over_lease(tmp_path):
    result = subprocess.run([sys.executable, "tests/tools/sqlite_queue_race.py", str(tmp_path / "race.sqlite3")],
                            cwd=ROOT, capture_output=True, text=True, timeout=300,
                            env={"PATH": "/usr/bin:/bin", "PYTHONPATH": str(ROOT)})
    lines = result.stdout.strip().splitlines()
    assert result.returncode == 0, result.stderr[-2000:]
    assert lines[-3:] == ["errors 0 []", "leased 50 max per clip 2 pairs unique True", "slots match True"], lines
