"""Whole-scene prediction: one engine (blocks, tiles, blending, resume, COG output) shared by the dense systems."""
