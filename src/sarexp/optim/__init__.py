"""Optimizer parameter groups and learning-rate schedules shared by all systems."""
