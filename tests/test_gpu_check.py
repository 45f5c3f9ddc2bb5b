"""scripts/gpu_check.sh on a CPU: `--dry-run` lists the tests and speed cases a GPU session would run and runs
nothing; the report writer turns pytest's JUnit XML and the suite's table into the Markdown report."""

import os
import runpy
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.slow
def test_dry_run_lists_every_test_and_case_and_writes_nothing(tmp_path):
    report = tmp_path / "report.md"
    result = subprocess.run(["bash", str(ROOT / "scripts" / "gpu_check.sh"), "--dry-run", "--report", str(report)],
                            env={**os.environ, "PYTHON": sys.executable}, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
    plan = result.stdout
    assert "pytest -m gpu" in plan and "benchmarks/gpu_suite.py" in plan
    for test in ("test_experiment_trains_validates_and_tests[ssm4sar-32-true]",
                 "test_experiment_trains_validates_and_tests[colorization_ldm_paper-16-mixed]",
                 "test_compiled_network_trains[hsi_mstpp]", "test_predict_task[hsi_cswin_gan]",
                 "test_ddp_job_keeps_replicas_identical_and_gan_gradients_exact", "test_colorize_task"):
        assert test in plan, test
    assert "   hsi_train" in plan and "   colorization_ldm" in plan
    assert not report.exists() and not (tmp_path / "report_logs").exists()


def test_report_has_a_row_per_test_and_the_speed_table(tmp_path, monkeypatch):
    logs = tmp_path / "logs"
    logs.mkdir()
    (logs / "junit.xml").write_text(
        '<testsuites><testsuite name="pytest">'
        '<testcase classname="tests.test_gpu" name="test_a[x]" time="1.5"/>'
        '<testcase classname="tests.test_gpu" name="test_b" time="0.2"><failure message="assert 1 == 2">tb'
        '</failure></testcase>'
        '<testcase classname="tests.test_gpu" name="test_c" time="0"><skipped message="needs two GPUs"/></testcase>'
        '<testcase time="0.001"/>'  # what pytest writes for the test a time limit interrupted
        '</testsuite></testsuites>')
    (logs / "pytest.log").write_text("1 failed, 1 passed, 1 skipped\n")
    (logs / "suite.log").write_text("[s4d_layer: 3 s]\nsarexp GPU suite — H100, torch 2\n| case | variant |\n|---|---|\n")
    (logs / "nvidia-smi.txt").write_text("NVIDIA-SMI 550\n")
    out = tmp_path / "report.md"
    monkeypatch.setattr(sys, "argv", ["gpu_report.py", "--logs", str(logs), "--out", str(out), "--pytest-exit", "1",
                                      "--pytest-s", "12", "--suite-exit", "0", "--suite-s", "40"])
    runpy.run_path(str(ROOT / "scripts" / "gpu_report.py"), run_name="__main__")
    text = out.read_text()
    assert "1 passed, 1 failed, 0 error, 1 skipped, 1 interrupted" in text
    assert "| (the test running at the time limit) | **INTERRUPTED** | | |" in text
    assert "| `test_gpu::test_b` | **FAIL** | 0.2 | assert 1 == 2 |" in text
    assert "| `test_gpu::test_c` | skip | 0.0 | needs two GPUs |" in text
    assert "sarexp GPU suite — H100" in text and "| case | variant |" in text and "NVIDIA-SMI 550" in text
    assert "- torch " in text and "exit code 1 after 12 s" in text


def test_stages_not_run_yet_are_reported_as_such(tmp_path, monkeypatch):
    out = tmp_path / "report.md"
    monkeypatch.setattr(sys, "argv", ["gpu_report.py", "--logs", str(tmp_path), "--out", str(out)])
    runpy.run_path(str(ROOT / "scripts" / "gpu_report.py"), run_name="__main__")
    assert out.read_text().count("not run yet") == 2
