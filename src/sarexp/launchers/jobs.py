"""What each task of a Submitit job does before it runs the Hydra job.

Every SLURM task (one per rank) runs the same Hydra job in the same job dir. Only rank 0 keeps Hydra's
outputs (`.hydra/` and the `run.log` file); the other ranks log to their stream only, so the run dir
holds one copy of everything.
"""

from omegaconf import DictConfig, open_dict


def keep_outputs_to_rank_zero(config: DictConfig, global_rank: int) -> None:
    if global_rank == 0:
        return
    with open_dict(config.hydra):
        config.hydra.output_subdir = None
        logging_config = config.hydra.job_logging
        if logging_config and "root" in logging_config and "handlers" in logging_config.root:
            logging_config.root.handlers = [h for h in logging_config.root.handlers if h != "file"]
            logging_config.handlers.pop("file", None)
