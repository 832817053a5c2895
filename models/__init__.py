"""Models behind swarmlab: one interface, backends registered by name."""

from ._base import Completion, CompletionRequest, Message, ModelBackend, Usage, rough_token_count
from ._errors import ModelError
from ._registry import backend_kinds, create_backend, register
from ._sim import SimOptions

__all__ = [
    "Completion",
    "CompletionRequest",
    "Message",
    "ModelBackend",
    "ModelError",
    "SimOptions",
    "Usage",
    "backend_kinds",
    "create_backend",
    "register",
    "rough_token_count",
]
