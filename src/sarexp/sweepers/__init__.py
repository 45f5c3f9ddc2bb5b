"""Hydra sweepers: the Optuna sweeper with persistent, resumable studies and a live summary."""
