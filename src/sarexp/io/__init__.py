"""The I/O ground floor: atomic writes and weights-only reading. Imports nothing of sarexp above it."""
