"""Model calls under the caps: reserve the worst case, call, settle to what was really used."""

from __future__ import annotations

import json

from swarmlab.core import ModelError, ProgramFault
from swarmlab.models import Completion, CompletionRequest, ModelBackend

from ._coordinator import Coordinator


async def charge_model_call(
    coord: Coordinator, backend: ModelBackend, request: CompletionRequest
) -> Completion:
    """One model call: reserve prompt estimate + max_tokens, call, settle, record the call."""
    reserved = backend.estimate_prompt_tokens(request) + request.max_tokens
    await coord.reserve(model_calls=1, tokens=reserved)
    try:
        completion = await backend.generate(request)
    except ModelError as exc:
        await coord.settle("tokens", -reserved)
        raise ProgramFault(f"model call failed: {exc}") from None
    await coord.settle("tokens", min(completion.usage.total_tokens, reserved) - reserved)
    record = {
        "seed": request.seed,
        "request": request.model_dump(),
        "completion": completion.model_dump(),
    }
    await coord.record_completion(json.dumps(record))
    return completion
