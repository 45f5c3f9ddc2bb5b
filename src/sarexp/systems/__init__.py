"""LightningModules, one per learning setup; each is reused by every system (experiment) of that kind."""
