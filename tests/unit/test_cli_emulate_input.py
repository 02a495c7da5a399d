"""`pipeline-bot emulate` and `demo` given a port out of range or a scenario of the wrong shape: a Python traceback
(OverflowError from bind, AttributeError from `jobs: [...]`) was all a person saw. Now one line and the documented
exit code 2 (a usage error). The real CLI in a subprocess."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


def cli(tmp_path: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "bot", *args], cwd=tmp_path, capture_output=True, text=True, timeout=30, check=False,
        env={"PATH": "/usr/bin:/bin", "PYTHONPATH": str(ROOT)},
    )


@pytest.mark.parametrize("command", [["emulate", "rivery"], ["demo"]])
def test_a_port_out_of_range_is_a_usage_error(tmp_path: Path, command: list[str]) -> None:
    result = cli(tmp_path, *command, "--port", "80000")
    assert result.returncode == 2, result.stderr
    assert "Traceback" not in result.stderr
    assert result.stderr.splitlines()[-1].endswith(
        "argument --port: 80000 is not a port: use a number from 0 (a free one) to 65535"
    ), result.stderr


def test_a_scenario_of_the_wrong_shape_is_one_line(tmp_path: Path) -> None:
    (tmp_path / "scenario.yml").write_text("jobs: [r1, r2]\n")
    result = cli(tmp_path, "emulate", "rivery", "--scenario", "scenario.yml")
    assert result.returncode == 2, result.stderr
    assert result.stderr.splitlines() == [
        "pipeline-bot emulate: bad scenario: jobs must be a mapping of job ids to outcomes, like {r1: succeeded}"
    ], result.stderr
