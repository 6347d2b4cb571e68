"""Synthetic songs and dances."""
