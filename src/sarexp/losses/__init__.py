"""Loss modules; each returns a dict of named terms with the weighted total under "loss"."""
