"""Metrics (torchmetrics objects) shared by the systems."""
