"""What an administrator installs besides the package: the systemd unit (hardened, scored by
systemd itself), and the files the wheel must carry."""

from __future__ import annotations

import re
import shutil
import subprocess
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).parents[1]
UNIT = ROOT / "config" / "mailproc.service"


def test_the_unit_scores_at_most_two_in_systemd_analyze_security(tmp_path):
    analyze = shutil.which("systemd-analyze")
    assert analyze, "systemd-analyze is missing: scripts/test installs the systemd package"
    unit = tmp_path / "mailproc.service"
    shutil.copy(UNIT, unit)
    done = subprocess.run(
        [analyze, "security", "--offline=yes", "--no-pager", str(unit)],
        capture_output=True,
        text=True,
        check=False,
    )
    match = re.search(r"Overall exposure level for mailproc\.service: (\d+\.\d+)", done.stdout)
    assert match, done.stdout + done.stderr
    assert float(match.group(1)) <= 2.0, done.stdout


def test_the_unit_is_type_notify_with_a_watchdog_state_directory_and_credentials():
    lines = {line.split("=", 1)[0]: line for line in UNIT.read_text().splitlines() if "=" in line}
    assert lines["Type"] == "Type=notify" and "WatchdogSec" in lines
    assert lines["StateDirectory"] == "StateDirectory=mailproc"
    assert lines["ConfigurationDirectory"] == "ConfigurationDirectory=mailproc"
    assert lines["LoadCredential"].startswith("LoadCredential=MAILPROC_SECRET:")
    assert "EnvironmentFile" not in lines  # secrets do not sit in the environment


@pytest.mark.timeout(600)
def test_the_wheel_carries_the_example_configuration_the_unit_and_the_templates(tmp_path):
    pip = ROOT / ".venv" / "bin" / "pip"
    subprocess.run(
        [str(pip), "wheel", "--no-deps", "--no-build-isolation", "-q", "-w", str(tmp_path), "."],
        cwd=ROOT,
        check=True,
    )
    (wheel,) = tmp_path.glob("*.whl")
    assert wheel.name.startswith("mailproc_desk-")
    names = set(zipfile.ZipFile(wheel).namelist())
    assert "mailproc/_data/mailproc.example.toml" in names
    assert "mailproc/_data/mailproc.service" in names
    assert "mailproc/_templates/acknowledgment/body.txt" in names
    assert "mailproc/store/migrations/env.py" in names
