"""Generators that write small synthetic datasets in the exact on-disk layout the real loaders read."""
