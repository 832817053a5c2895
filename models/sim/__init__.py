"""The `sim` policy: a seeded simulation of the scenario's model, not a language model."""

from ._policy import CODE_HEADER, SIM_MODEL, SimBackend, scaffold_probability

__all__ = ["CODE_HEADER", "SIM_MODEL", "SimBackend", "scaffold_probability"]
