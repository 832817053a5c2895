"""Models behind swarmlab: one interface, backends registered by name."""

from ._base import Completion, CompletionRequest, Message, ModelBackend, Usage, rough_token_count
from ._errors import ModelError
from ._local import ensure_local_server
from ._openai import request_headers
from ._registry import backend_kinds, create_backend, register
from ._serve_cli import add_serve_parser, serve_command
from ._sim import SimOptions

__all__ = [
    "Completion",
    "CompletionRequest",
    "Message",
    "ModelBackend",
    "ModelError",
    "SimOptions",
    "Usage",
    "add_serve_parser",
    "backend_kinds",
    "create_backend",
    "ensure_local_server",
    "register",
    "request_headers",
    "rough_token_count",
    "serve_command",
]
