"""End to end through the CLI: experiment=colorization_clip (and its resume) and experiment=colorization_vae on
tiny data, then the stage checkpoints reloaded the way the LDM stage reads them (weights only)."""

from pathlib import Path

import pytest
import torch

from cli_helpers import read_metrics, run_cli
from sarexp.models.colorization.text import encode_prompts, load_text_encoder
from sarexp.models.colorization.vae import encode_latents, load_vae

DATA = ["data.image_size=16", "data.simulator.scenes=6", "data.simulator.patches_per_scene=4",
        "data.batch_size=8", "data.val_batch_size=8", "data.simulator.path_separator=\\",
        "callbacks.progress_bar=null", "callbacks.model_summary=null", "trainer.max_epochs=2"]


@pytest.mark.slow
def test_clip_then_vae_stages_through_the_cli(tmp_path: Path) -> None:
    common = [f"paths.root_dir={tmp_path}", f"paths.data_dir={tmp_path / 'data'}", *DATA]
    clip_dir = tmp_path / "clip"
    clip_args = ["experiment=colorization_clip", f"paths.run_dir={clip_dir}", *common, "model.embed_dim=8",
                 "model.text.hidden_size=16", "model.text.num_attention_heads=2", "model.text.num_hidden_layers=1",
                 "model.text.max_position_embeddings=16", "model.image.channels=[8,8]",
                 "callbacks.periodic_checkpoint.every_n_epochs=1"]
    result = run_cli(clip_args, tmp_path)
    assert result.returncode == 0, result.stderr[-3000:]
    metrics = read_metrics(clip_dir)
    assert {"val/loss", "test/zero_shot_accuracy", "test/retrieval_accuracy"} <= set(metrics)
    assert (clip_dir / "checkpoints" / "clip_epoch001.ckpt").is_file()        # the seed's save_every
    tokenizer, text_model = load_text_encoder(clip_dir / "checkpoints" / "last.ckpt")
    states = encode_prompts(tokenizer, text_model, ["Colorize the image, Region: arctic, Season: winter", ""])
    assert states.shape == (2, 16, 16)

    vae_dir = tmp_path / "vae"
    result = run_cli(["experiment=colorization_vae", f"paths.run_dir={vae_dir}", *common,
                      "model.block_out_channels=[8,8,8,8]", "model.norm_num_groups=4"], tmp_path)
    assert result.returncode == 0, result.stderr[-3000:]
    metrics = read_metrics(vae_dir)
    vae = load_vae(vae_dir / "checkpoints" / "last.ckpt")
    assert vae.config.scaling_factor == pytest.approx(metrics["val/scaling_factor"], rel=1e-5)
    with torch.no_grad():
        assert encode_latents(vae, torch.zeros(1, 1, 16, 16)).shape == (1, 4, 2, 2)

    clip_args[clip_args.index("trainer.max_epochs=2")] = "trainer.max_epochs=3"   # the same run dir: resume
    result = run_cli(clip_args, tmp_path)
    assert result.returncode == 0, result.stderr[-3000:]
    assert "starting from checkpoint" in result.stdout + result.stderr
    assert (clip_dir / "checkpoints" / "clip_epoch002.ckpt").is_file()
    assert not (clip_dir / "checkpoints" / "clip_epoch003.ckpt").exists()
    resumed_tokenizer, _ = load_text_encoder(clip_dir / "checkpoints" / "last.ckpt")
    assert resumed_tokenizer.state() == tokenizer.state()
