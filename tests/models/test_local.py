"""The local backend: GGUF located without importing its package, converted once into a folder
vLLM loads, and a running server reused instead of started twice."""

from __future__ import annotations

import asyncio
import json
import os
import threading
import time
from pathlib import Path
from typing import Any

import pytest

from swarmlab.models import CompletionRequest, Message, ModelError, create_backend
from swarmlab.models._local import (
    LocalBackend,
    bundled_gguf,
    cache_dir,
    converted_dir,
    ensure_converted,
    ensure_local_server,
    record_server,
)


def test_cache_dir_follows_xdg(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    assert cache_dir() == tmp_path / "swarmlab"
    monkeypatch.delenv("XDG_CACHE_HOME")
    assert cache_dir() == Path.home() / ".cache" / "swarmlab"


def test_converted_dir_is_named_after_the_model(tmp_path: Path) -> None:
    gguf = tmp_path / "SmolLM2-135M-Instruct.Q4_1.gguf"
    assert converted_dir(gguf, tmp_path) == tmp_path / "models" / "SmolLM2-135M-Instruct-bf16"


def test_local_takes_no_argument() -> None:
    with pytest.raises(ModelError, match="takes no argument"):
        create_backend("local:/some/path")
    assert isinstance(create_backend("local", model_name=None, sim_options=None), LocalBackend)


def test_a_failed_conversion_is_one_line_and_leaves_nothing(tmp_path: Path) -> None:
    gguf = tmp_path / "Broken.Q4_0.gguf"
    gguf.write_bytes(b"not a gguf file")
    with pytest.raises(ModelError, match=r"converting Broken\.Q4_0\.gguf failed: ") as caught:
        ensure_converted(gguf, cache=tmp_path / "cache")
    assert "\n" not in str(caught.value)
    assert not (tmp_path / "cache" / "models" / "Broken-bf16").exists()


@pytest.mark.vllm
def test_gguf_converts_once_into_a_loadable_folder(tmp_path: Path) -> None:
    from safetensors import safe_open
    from transformers import AutoConfig, AutoTokenizer

    gguf = bundled_gguf()
    assert gguf.name.endswith(".gguf")
    assert gguf.stat().st_size > 50_000_000
    cache = tmp_path / "cache"
    folders: list[Path] = []
    threads = [
        threading.Thread(target=lambda: folders.append(ensure_converted(gguf, cache=cache)))
        for _ in range(2)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(folders) == 2
    assert folders[0] == folders[1] == converted_dir(gguf, cache)
    folder = folders[0]
    assert not list(folder.parent.glob("*.tmp-*"))  # the loser of the lock converted nothing

    config = json.loads((folder / "config.json").read_text())
    assert "quantization_config" not in config
    assert config["architectures"] == ["LlamaForCausalLM"]
    assert AutoConfig.from_pretrained(folder).num_hidden_layers == 30
    with safe_open(str(folder / "model.safetensors"), "pt") as weights:
        embed = weights.get_tensor("model.embed_tokens.weight")
        assert str(embed.dtype) == "torch.bfloat16"
        assert tuple(embed.shape) == (49152, 576)
        assert len(list(weights.keys())) == 272
    tokenizer = AutoTokenizer.from_pretrained(folder)
    chat = tokenizer.apply_chat_template(
        [{"role": "user", "content": "hi"}], tokenize=False, add_generation_prompt=True
    )
    assert "<|im_start|>user\nhi<|im_end|>" in chat
    assert ensure_converted(gguf, cache=cache) == folder  # cached: no second conversion


@pytest.mark.vllm
def test_a_recorded_server_is_reused(vllm_server: Any, tmp_path: Path) -> None:
    record_server(vllm_server.server, tmp_path)
    again = ensure_local_server(cache=tmp_path)
    assert (again.url, again.model_name) == (vllm_server.url, vllm_server.model_name)
    assert not again.server.owned
    again.stop()  # a reused server stays up
    assert vllm_server.server.running()

    async def go() -> str:
        backend = LocalBackend(server_options={"cache": tmp_path})
        request = CompletionRequest(messages=(Message(role="user", content="Hi!"),), max_tokens=4)
        try:
            return (await backend.generate(request)).model
        finally:
            await backend.aclose()

    assert asyncio.run(go()) == "local:SmolLM2-135M-Instruct"
    assert vllm_server.server.running()


def test_the_local_servers_state_files_are_read_and_written_as_hostile(tmp_path: Path) -> None:
    """A FIFO at local-server.json hung `--model local`; a symlink there was written through;
    a FIFO at the conversion's lock blocked its open."""
    from types import SimpleNamespace

    from swarmlab.models._local import RECORD, _converted, _locked, _recorded_server

    record = tmp_path / RECORD
    os.mkfifo(record)
    started = time.monotonic()
    assert _recorded_server("m", tmp_path) is None
    marker = tmp_path / "converted"
    marker.mkdir()
    os.mkfifo(marker / ".swarmlab-converted.json")
    assert not _converted(marker, {"a": 1})
    assert time.monotonic() - started < 5.0
    record.unlink()
    for text in ('{"url": "http://x:abc/v1", "model": "m"}', "[" * 5000, '{"url": 5}'):
        record.write_text(text)
        assert _recorded_server("m", tmp_path) is None
    record.unlink()
    victim = tmp_path / "victim.txt"
    victim.write_text("mine")
    record.symlink_to(victim)
    server = SimpleNamespace(url="http://127.0.0.1:8000/v1", model_name="m", pid=1)
    record_server(server, tmp_path)  # type: ignore[arg-type]
    assert victim.read_text() == "mine"
    assert json.loads(record.read_text())["model"] == "m"
    lock = tmp_path / "x.lock"
    os.mkfifo(lock)
    with (
        pytest.raises(ModelError, match=r"x.lock: (cannot lock|not a regular file)"),
        _locked(lock),
    ):
        pass
    assert time.monotonic() - started < 10.0
