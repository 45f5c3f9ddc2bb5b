"""Config plumbing: the typed root schema, locating conf/, and checking `_target_` nodes before a run."""
