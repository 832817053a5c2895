"""Ray Serve LLM: an OpenAI-compatible application for one model, from its `LLMConfig` fields."""

from __future__ import annotations

from typing import Any

from swarmlab.core import ClusterError


def build_llm_app(llm_config: dict[str, Any]) -> Any:
    """A Ray Serve application serving one model; deploy it with `ray.serve.run(app)`.

    `llm_config` holds the fields of `ray.serve.llm.LLMConfig` (see `swarmlab.models`'
    `serve_llm_config`), validated here by Ray's own class.
    """
    try:
        from ray.serve.llm import LLMConfig, build_openai_app
    except ImportError as exc:
        raise ClusterError(
            f"Ray Serve LLM is not installed ({exc}): pip install 'ray[serve,llm]==2.60.0'"
        ) from None
    return build_openai_app({"llm_configs": [LLMConfig(**llm_config)]})
