"""Gaussian diffusion machinery, independent of any network: noise schedules, the forward/reverse process with
its losses and variational bound, respacing, timestep samplers for training and the samplers that draw images
(ancestral DDPM, DDIM, DPM-Solver). Networks are plain callables `model_fn(x_t, t) -> output`."""
