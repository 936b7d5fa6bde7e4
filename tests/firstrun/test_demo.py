"""`make demo` as a user runs it with its output in a log: progress, a true report, no leftovers."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.processes

BIN = Path(sys.executable).parent
PROGRESS = re.compile(r"^\s*\d+ s  campaign \d+ \((bytehand|timetochat), \w+\): \d+ of \d+ sent")


def processes_mentioning(text: str) -> list[int]:
    """PIDs whose command line or environment contains ``text`` (this process excluded)."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit() or int(entry.name) == os.getpid():
            continue
        try:
            seen = (entry / "cmdline").read_bytes() + (entry / "environ").read_bytes()
        except OSError:  # gone meanwhile, or not ours to read
            continue
        if text.encode() in seen:
            found.append(int(entry.name))
    return found


def test_demo_in_a_log(tmp_path: Path) -> None:
    """Piped output: a progress line every few seconds, an 80-column report with nothing cut,
    "demo passed", and no process of the demo left once it returns."""
    state = tmp_path / "demo"
    env = {k: v for k, v in os.environ.items() if k not in ("COLUMNS", "REDIS_URL", "DATABASE_URL")}
    result = subprocess.run(
        [str(BIN / "dispatcher"), "demo", "--recipients", "200", "--dir", str(state)],
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
        check=False,
    )
    lines = result.stdout.splitlines()
    assert result.returncode == 0, result.stdout + result.stderr
    assert lines[-1] == "demo passed"
    progress = [line for line in lines if PROGRESS.match(line)]
    assert len(progress) >= 4, result.stdout
    assert all(len(line) <= 80 for line in lines), result.stdout
    assert "…" not in result.stdout
    assert "unknown (silent past the polling deadline)" in result.stdout
    assert "reported by provider" not in result.stdout.split("unknown:")[-1].split("\n")[0]
    assert processes_mentioning(str(state)) == []
