"""Faces: the ways people reach the engine (CLI, Jupyter Server extension, presentation tables)."""
