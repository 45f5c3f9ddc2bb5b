"""Cluster launches through Submitit: per-rank job setup and the sbatch script a launch would submit."""
