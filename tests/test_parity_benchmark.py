"""benchmarks/parity.py smoke-tested at tiny sizes: every section and system yields finite figures; a reference
whose checkout is absent is a skipped column, not a failure. SAREXP_PARITY_REFERENCES=DIR (holding pdm/, mstpp/,
sarwmixmae/ checkouts) adds the reference columns."""

import importlib.util
import math
import os
import sys
from pathlib import Path

import pytest

_BENCHMARKS = Path(__file__).resolve().parents[1] / "benchmarks"
REFERENCES = ("pdm", "mstpp", "sarwmixmae")


@pytest.fixture(scope="module")
def parity():
    sys.path.insert(0, str(_BENCHMARKS))
    spec = importlib.util.spec_from_file_location("parity", _BENCHMARKS / "parity.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    yield module
    sys.path.remove(str(_BENCHMARKS))


def _checkouts() -> dict[str, Path]:
    root = os.environ.get("SAREXP_PARITY_REFERENCES")
    if not root:
        return {}
    return {name: Path(root) / name for name in REFERENCES if (Path(root) / name).is_dir()}


def _positive(value: object) -> bool:
    return isinstance(value, float) and math.isfinite(value) and value > 0


def test_smoke_run_measures_every_system_and_skips_absent_checkouts(parity, capsys) -> None:
    checkouts = _checkouts()
    arguments = ["--smoke", *[f"--reference={name}={path}" for name, path in checkouts.items()]]
    results = parity.main(arguments)
    failed = [row for rows in results.values() for row in rows if str(row.get("note", "")).startswith("failed")]
    assert not failed, failed

    train = results["train"]
    systems = {"ssm4sar", "pdm", "mixmae", "hsi_mstpp", "hsi_cswin_gan", "colorization_ldm"}
    assert {row["system"] for row in train} == systems
    for system in systems:
        columns = {row["column"]: row for row in train if row["system"] == system}
        assert _positive(columns["sarexp"]["ms/step"]) and _positive(columns["lean"]["ms/step"]), columns
        assert columns["lean"]["× lean"] == 1.0
        assert _positive(columns["sarexp"]["× lean"])
    with_original = {"pdm": "pdm", "mixmae": "sarwmixmae", "hsi_mstpp": "mstpp"}
    for system, checkout in with_original.items():
        reference = next(row for row in train if row["system"] == system and row["column"] == "reference")
        if checkout in checkouts:
            assert _positive(reference["ms/step"]), reference
        else:
            assert reference["note"] == f"skipped: no --reference {checkout}=PATH"
    colorization = next(row for row in train if row["system"] == "colorization_ldm" and row["column"] == "reference")
    assert _positive(colorization["ms/step"])  # diffusers is installed: always measured

    infer = {(row["system"], row["column"]): row for row in results["infer"]}
    for key in [("pdm", "sarexp ancestral"), ("pdm", "sarexp DDIM"), ("colorization_ldm", "sarexp colorize"),
                ("colorization_ldm", "diffusers img2img"), ("hsi_mstpp", "sarexp predict")]:
        assert _positive(infer[key]["items/s"]), infer[key]
    assert _positive(infer[("colorization_ldm", "sarexp colorize")]["× reference rate"])

    data = results["data"]
    assert {row["system"] for row in data} >= {"hsi_mstpp", "pdm", "pdm_images", "mixmae", "ssm4sar",
                                                "colorization_ldm", "mixmae_sen12flood"}
    assert all(_positive(row["items/s"]) for row in data if row["column"] == "sarexp")
    assert all(row["note"] for row in data if row["column"] == "reference" and row.get("items/s") is None)

    printed = capsys.readouterr().out
    assert printed.count("| system | column |") == 3


def test_the_reference_networks_compute_what_sarexp_networks_compute(parity, tmp_path) -> None:
    """The weights copied into the originals' networks make them the same functions as sarexp's (so the
    columns time the same network): the PDM seed's UNetModel and MST++, on the same input."""
    checkouts = _checkouts()
    if not {"pdm", "mstpp"} <= set(checkouts):
        pytest.skip("needs SAREXP_PARITY_REFERENCES with pdm/ and mstpp/ checkouts")
    import torch

    from parity_references import reference_context, seed_unet_and_diffusion
    from parity_support import Settings
    from parity_train import _seed_state, build

    settings = Settings(device="cpu", steps=1, warmup=0, rounds=1, workdir=tmp_path, references=checkouts, smoke=True)
    cfg, system, batch = build(settings, ["experiment=pdm_insar_noise", "data.image_size=16",
                                          "data.generator.counts={train:4,val:2,test:2}", "data.batch_size=2"])
    seed_model, _, _ = seed_unet_and_diffusion(settings, cfg)
    seed_model.load_state_dict(_seed_state(system.net, seed_model))
    x, t = batch["image"], torch.tensor([3, 17])
    with torch.no_grad():
        assert torch.allclose(seed_model.eval()(x, t), system.net.eval()(x, t), atol=1e-5)

    cfg, system, batch = build(settings, ["experiment=hsi_mstpp", "data.simulator.scenes={train:2,validation:1,test:1}",
                                          "data.simulator.height=32", "data.simulator.width=40", "data.patch_size=16",
                                          "data.stride=16", "data.batch_size=2"])
    with reference_context(settings, "mstpp") as modules:
        mstpp = modules["architecture"].MST_Plus_Plus()
    mstpp.load_state_dict(system.net.state_dict())
    with torch.no_grad():
        assert torch.allclose(mstpp.eval()(batch["rgb"]), system.net.eval()(batch["rgb"]), atol=1e-5)
