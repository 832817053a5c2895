"""Errors a model backend raises."""


class ModelError(Exception):
    """A model call failed (endpoint down, bad answer, unknown backend)."""
