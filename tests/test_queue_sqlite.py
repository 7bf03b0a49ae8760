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


def test_the_demo_loop_works_on_sqlite(tmp_path):
    # The lean path's PostgreSQL-only statements must not leak into the demo: a grant check cast
    # for PostgreSQL refused every submit on SQLite ("lease ended") until this test existed.
    result = subprocess.run([sys.executable, "tests/tools/sqlite_demo_loop.py", str(tmp_path / "demo.sqlite3")],
                            cwd=ROOT, capture_output=True, text=True, timeout=600,
                            env={"PATH": "/usr/bin:/bin", "PYTHONPATH": str(ROOT)})
    assert result.returncode == 0, result.stderr[-2000:]
    assert result.stdout.strip().splitlines()[-3:] == ["audio 200", "draft 200", "submit 201"], result.stdout
