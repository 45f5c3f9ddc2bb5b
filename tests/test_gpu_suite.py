"""The GPU suite's code, smoke-tested at its CPU sizes: every case yields finite figures, missing systems skip."""

import importlib.util
import math
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow

_PATH = Path(__file__).resolve().parents[1] / "benchmarks" / "gpu_suite.py"


@pytest.fixture(scope="module")
def suite():
    spec = importlib.util.spec_from_file_location("gpu_suite", _PATH)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_cpu_smoke_run_gives_finite_figures_for_every_case(suite, tmp_path, capsys):
    scale = suite.cpu_scale(tmp_path, compile_on_cpu=False)
    rows = suite.run_cases(list(suite.CASES), scale)
    assert not [row for row in rows if str(row.get("note", "")).startswith("failed")], rows
    measured = {row["case"] for row in rows if isinstance(row.get("items/s"), float)}
    assert measured == {"s4d_layer", "ssm4sar_train", "mixmae_pretrain", "pdm_unet", "hsi_train", "colorization_ldm"}
    for row in rows:
        for column in ("ms/step", "items/s", "loader items/s", "loader/device"):
            if column in row:
                assert math.isfinite(row[column]) and row[column] > 0, (row, column)
    lengths = {row["variant"] for row in rows if row["case"] == "s4d_layer"}
    assert "torch L=10000" in lengths
    mixmae = {row["variant"]: row for row in rows if row["case"] == "mixmae_pretrain"}
    assert "items/s" in mixmae["32-true"] and "items/s" in mixmae["bf16-mixed"]
    assert mixmae["bf16-mixed compiled"]["note"].startswith("skipped")
    samplers = [row for row in rows if row["case"] == "pdm_unet" and row["variant"].startswith("sample")]
    assert len(samplers) == 3
    hsi = {row["variant"] for row in rows if row["case"] == "hsi_train"}
    assert hsi == {"hsi_mstpp 32-true", "hsi_mstpp bf16-mixed", "hsi_cswin_gan bf16-mixed", "hsi_cswin_gan 32-true"}
    ldm = [row["variant"] for row in rows if row["case"] == "colorization_ldm"]
    assert ldm[0] == "train step" and ldm[1].startswith("img2img DDIM")
    table = suite.format_table(rows)
    assert table.count("\n") == len(rows) + 1 and "loader/device" in table


def test_a_case_whose_modules_are_missing_is_listed_as_skipped(suite, tmp_path):
    suite.case("future_system", modules=("sarexp.systems.no_such_system",))(lambda scale: [{"variant": "x"}])
    try:
        rows = suite.run_cases(["future_system"], suite.cpu_scale(tmp_path, compile_on_cpu=False))
    finally:
        del suite.CASES["future_system"]
    assert rows == [{"case": "future_system", "note": "skipped: sarexp.systems.no_such_system not importable"}]


def test_cases_left_when_the_budget_is_spent_are_listed_as_skipped(suite, tmp_path):
    rows = suite.run_cases(["s4d_layer", "pdm_unet"], suite.cpu_scale(tmp_path, compile_on_cpu=False), budget_s=0.0)
    assert [row["note"] for row in rows] == ["skipped: --budget-s 0 spent"] * 2
