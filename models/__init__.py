"""Models behind swarmlab: one interface, `ModelBackend.generate(request) -> Completion`, and
backends registered by kind (`sim`, `openai`, `local`, `replay`, or a third party's)."""

from swarmlab.core import ModelError

from ._base import Completion, CompletionRequest, Message, ModelBackend, Usage, rough_token_count
from ._local import LocalServer, ensure_local_server
from ._openai import request_headers
from ._registry import backend_kinds, create_backend

__all__ = [
    "Completion",
    "CompletionRequest",
    "LocalServer",
    "Message",
    "ModelBackend",
    "ModelError",
    "Usage",
    "backend_kinds",
    "create_backend",
    "ensure_local_server",
    "request_headers",
    "rough_token_count",
]
