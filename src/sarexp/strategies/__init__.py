"""Lightning strategies that know they run inside a Hydra job."""
