"""The one model interface: a request goes in, a completion comes out.

The programs a model writes for swarmlab can call only the capability API in
docs/capabilities.md.
"""

from __future__ import annotations

import abc
import math
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

MAX_REPORTED_TOKENS = 10**7
"""The most tokens one call may count (prompt or completion): a server that reports more is not
believed (`_openai`), and a recording that says more is refused (`_replay`)."""
MAX_CHARS_PER_TOKEN = 32
"""An answer holds at most this many characters per token asked (at least `MIN_ANSWER_CHARS`):
a server's longer answer is cut, as at the limit; a recording's is refused."""
MIN_ANSWER_CHARS = 4096


def most_answer_chars(max_tokens: int) -> int:
    """The longest answer a call that asked `max_tokens` may get."""
    return max(MIN_ANSWER_CHARS, MAX_CHARS_PER_TOKEN * max_tokens)


class Message(BaseModel):
    """One chat turn."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    role: Literal["system", "user", "assistant"] = Field(description="Who speaks.")
    content: str = Field(description="What is said.")


class CompletionRequest(BaseModel):
    """What a caller asks a model for."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    messages: tuple[Message, ...] = Field(description="The conversation so far, oldest first.")
    max_tokens: int = Field(default=256, ge=1, description="Upper bound on completion tokens.")
    temperature: float = Field(default=0.7, ge=0.0, le=2.0, description="Sampling temperature.")
    seed: int | None = Field(default=None, description="Sampling seed, for reproducible runs.")
    stop: tuple[str, ...] = Field(default=(), description="Strings that end the completion.")

    @property
    def prompt_text(self) -> str:
        return "\n".join(m.content for m in self.messages)

    @property
    def last_user_text(self) -> str:
        for message in reversed(self.messages):
            if message.role == "user":
                return message.content
        return ""


class Usage(BaseModel):
    """Token counts as the backend reports them."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    prompt_tokens: int = Field(ge=0, le=MAX_REPORTED_TOKENS, description="Tokens in the prompt.")
    completion_tokens: int = Field(ge=0, le=MAX_REPORTED_TOKENS, description="Tokens generated.")

    @property
    def total_tokens(self) -> int:
        return self.prompt_tokens + self.completion_tokens


class Completion(BaseModel):
    """What a model answered."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    text: str = Field(description="The generated text.")
    usage: Usage = Field(description="Token usage of this call.")
    finish_reason: Literal["stop", "length"] = Field(description="Why generation ended.")
    model: str = Field(description="The backend and model that produced the text.")
    latency_s: float = Field(default=0.0, ge=0.0, description="Wall time of the call.")


def rough_token_count(text: str) -> int:
    """An upper-leaning token estimate (about four characters a token), used before a call."""
    return max(1, math.ceil(len(text) / 4))


class ModelBackend(abc.ABC):
    """A model behind swarmlab. Implement `generate`; everything else has a default."""

    name: str = "model"

    @abc.abstractmethod
    async def generate(self, request: CompletionRequest) -> Completion:
        """Answer one request."""

    def estimate_prompt_tokens(self, request: CompletionRequest) -> int:
        """Tokens to reserve for the prompt before the call (settled to real usage after)."""
        return sum(rough_token_count(m.content) + 4 for m in request.messages)

    async def aclose(self) -> None:  # noqa: B027 - an optional hook, not abstract
        """Release connections; the default holds none."""
