"""Data modules, on-disk format readers and synthetic generators that write those formats."""
