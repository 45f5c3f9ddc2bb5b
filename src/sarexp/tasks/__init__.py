"""Task functions selected by `task=`: each takes the composed config and returns a float or None."""
