"""Installed from a wheel (not editable), the project runs from any directory."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import sysconfig
import zipfile
from collections.abc import Iterator
from pathlib import Path

import pytest

pytestmark = pytest.mark.processes  # builds, installs, runs: not rate-sensitive

ROOT = Path(__file__).resolve().parents[2]
PACKAGES = ("dispatcher", "workers", "tasks")
BUILD_INPUTS = ("pyproject.toml", "README.md", *PACKAGES)


def _run(argv: list[str], **kwargs: object) -> subprocess.CompletedProcess[str]:
    result = subprocess.run(argv, capture_output=True, text=True, check=False, **kwargs)  # type: ignore[call-overload]
    assert result.returncode == 0, f"{argv}: {result.stdout}\n{result.stderr}"
    return result  # type: ignore[no-any-return]


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The project's wheel, built from a copy of the sources (the checkout stays untouched)."""
    source = tmp_path_factory.mktemp("source")
    ignore = shutil.ignore_patterns("__pycache__", "*.pyc")
    for name in BUILD_INPUTS:
        if (ROOT / name).is_dir():
            shutil.copytree(ROOT / name, source / name, ignore=ignore)
        else:
            shutil.copy2(ROOT / name, source / name)
    out = tmp_path_factory.mktemp("wheel")
    _run(
        [sys.executable, "-m", "pip", "wheel", "--quiet", "--no-deps", "-w", str(out), str(source)]
    )
    (built,) = out.glob("sms_dispatcher-*.whl")
    return built


@pytest.fixture(scope="module")
def installed(wheel: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """A new venv holding only the wheel; its dependencies are this venv's, through a ``.pth``
    (installing them from the registry takes minutes, and they are not what is under test)."""
    venv = tmp_path_factory.mktemp("venv")
    _run([sys.executable, "-m", "venv", str(venv)])
    python = venv / "bin" / "python"
    site = _run([str(python), "-c", "import sysconfig; print(sysconfig.get_path('purelib'))"])
    Path(site.stdout.strip(), "dependencies.pth").write_text(sysconfig.get_path("purelib") + "\n")
    _run([str(python), "-m", "pip", "install", "--quiet", "--no-deps", str(wheel)])
    yield venv


def test_wheel_ships_every_file_of_the_packages(wheel: Path) -> None:
    """Every file under dispatcher/, workers/ and tasks/ (defaults, migrations...) is in it."""
    with zipfile.ZipFile(wheel) as archive:
        shipped = set(archive.namelist())
    sources = {
        str(path.relative_to(ROOT))
        for package in PACKAGES
        for path in (ROOT / package).rglob("*")
        if path.is_file() and "__pycache__" not in path.parts
    }
    assert sources - shipped == set()


def test_installed_cli_runs_from_another_directory(installed: Path, tmp_path: Path) -> None:
    """`dispatcher estimate` then `campaign create` (which migrates) from a foreign directory."""
    (tmp_path / "r.csv").write_text("phone;first_name\n0601020304;Anne\n", encoding="utf-8")
    env = {
        "PATH": f"{installed / 'bin'}:/usr/bin:/bin",
        "HOME": str(tmp_path),
        "DISPATCHER_STATE_DIR": str(tmp_path / "state"),
    }
    dispatcher = str(installed / "bin" / "dispatcher")
    where = _run(
        [str(installed / "bin" / "python"), "-c", "import dispatcher; print(dispatcher.__file__)"],
        cwd=tmp_path,
        env=env,
    )
    assert where.stdout.startswith(str(installed))
    args = ["r.csv", "--provider", "bytehand", "--text", "Bonjour {first_name}", "--json"]
    estimate = _run([dispatcher, "estimate", *args], cwd=tmp_path, env=env)
    assert json.loads(estimate.stdout)["valid"] == 1
    created = _run(
        [dispatcher, "campaign", "create", *args, "--sender", "SMSINFO"], cwd=tmp_path, env=env
    )
    campaign_id = json.loads(created.stdout)["id"]
    status = _run(
        [dispatcher, "campaign", "status", str(campaign_id), "--json"], cwd=tmp_path, env=env
    )
    assert json.loads(status.stdout)["state"] == "draft"
    assert os.path.exists(tmp_path / "state" / "dispatcher.db")
