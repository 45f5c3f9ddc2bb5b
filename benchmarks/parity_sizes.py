"""Overrides of data and model size only, per system, for the smoke run of benchmarks/parity.py (seconds per
system; the measurement uses each experiment's shipped, CPU-sized defaults)."""

SMOKE: dict[str, list[str]] = {
    "ssm4sar": ["data.simulator.n_azimuth=256", "data.simulator.n_range=32", "data.simulator.chunks=[128,16]",
                "data.simulator.scenes={training:1,validation:1}", "data.simulator.point_targets=2",
                "data.patch_length=64", "data.stride=64", "data.batch_size=2", "model.d_model=8", "model.num_layers=1",
                "model.hidden_state_size=8"],
    "pdm": ["data.image_size=16", "data.generator.counts={train:4,val:2,test:2}", "data.batch_size=2",
            "diffusion.steps=20", "callbacks.model_summary=null"],
    "mixmae": ["data.simulator.patches={train:4,validation:2,test:2}", "data.batch_size=2", "model.embed_dim=8",
               "model.decoder_dim=16"],
    "hsi_mstpp": ["data.simulator.scenes={train:2,validation:1,test:1}", "data.simulator.height=32",
                  "data.simulator.width=40", "data.patch_size=16", "data.stride=16", "data.batch_size=2"],
    "hsi_cswin_gan": ["data.simulator.scenes={train:2,validation:1,test:1}", "data.simulator.height=32",
                      "data.simulator.width=40", "data.patch_size=16", "data.stride=16", "data.batch_size=2",
                      "model.dim=8", "model.noise_embed_dim=8", "system.discriminator.dim=8"],
    "colorization_ldm": ["data.image_size=32", "data.simulator.scenes=12", "data.simulator.patches_per_scene=1",
                         "data.batch_size=2", "model.cross_attention_dim=32", "model.block_out_channels=[16,32]",
                         "model.norm_num_groups=8", "model.attention_head_dim=2",
                         "vae.model.block_out_channels=[8,8,8,8]"],
    "mixmae_sen12flood": ["data.image_size=64", "data.simulator.size=64", "data.simulator.folders={train:5,test:1}",
                          "data.batch_size=2"],
}
