"""vLLM launch settings: the server command and environment (GPU and CPU), the Ray Serve LLM
config, and the server handle's start-up failure and reuse paths."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import pytest
from pydantic import ValidationError

from swarmlab.models import ModelError
from swarmlab.models._vllm import VLLMServer, VLLMServerConfig, build_serve_app, serve_llm_config


def flag(cmd: list[str], name: str) -> str:
    return cmd[cmd.index(name) + 1]


def test_gpu_command_is_vllm_serve_with_every_setting() -> None:
    config = VLLMServerConfig(
        model="Qwen/Qwen2.5-7B-Instruct",
        served_model_name="qwen",
        host="0.0.0.0",
        port=8000,
        max_model_len=8192,
        max_num_seqs=64,
        dtype="bfloat16",
        tensor_parallel_size=2,
        gpu_memory_utilization=0.85,
        otlp_traces_endpoint="http://jaeger:4317",
    )
    cmd = config.command()
    assert cmd[:3] == ["vllm", "serve", "Qwen/Qwen2.5-7B-Instruct"]
    assert flag(cmd, "--host") == "0.0.0.0"
    assert flag(cmd, "--port") == "8000"
    assert flag(cmd, "--served-model-name") == "qwen"
    assert flag(cmd, "--max-model-len") == "8192"
    assert flag(cmd, "--max-num-seqs") == "64"
    assert flag(cmd, "--dtype") == "bfloat16"
    assert flag(cmd, "--tensor-parallel-size") == "2"
    assert flag(cmd, "--gpu-memory-utilization") == "0.85"
    assert flag(cmd, "--otlp-traces-endpoint") == "http://jaeger:4317"
    assert "--enable-prefix-caching" in cmd
    assert "--enforce-eager" not in cmd
    env = config.environment()
    assert "VLLM_TARGET_DEVICE" not in env
    assert "HF_HUB_OFFLINE" not in env
    assert env["VLLM_NO_USAGE_STATS"] == "1"


def test_cpu_command_uses_the_module_entry_point_and_cpu_environment(tmp_path: Path) -> None:
    config = VLLMServerConfig(
        model=str(tmp_path),
        device="cpu",
        port=9000,
        enforce_eager=True,
        enable_prefix_caching=False,
        kv_cache_space_gib=3,
        extra_args=("--seed", "1"),
    )
    cmd = config.command()
    assert cmd[:4] == [sys.executable, "-m", "vllm.entrypoints.openai.api_server", "--model"]
    assert cmd[4] == str(tmp_path)
    assert flag(cmd, "--served-model-name") == str(tmp_path)
    assert "--enforce-eager" in cmd
    assert "--no-enable-prefix-caching" in cmd
    assert "--gpu-memory-utilization" not in cmd
    assert cmd[-2:] == ["--seed", "1"]
    env = config.environment()
    assert env["VLLM_TARGET_DEVICE"] == "cpu"
    assert env["VLLM_CPU_KVCACHE_SPACE"] == "3"
    assert env["VLLM_HOST_IP"] == "127.0.0.1"
    assert env["HF_HUB_OFFLINE"] == "1"  # a local folder: never reach for the hub


def test_otlp_protocol_reaches_vllm_exporter() -> None:
    grpc = VLLMServerConfig(model="m", otlp_traces_endpoint="http://jaeger:4317")
    assert grpc.environment()["OTEL_EXPORTER_OTLP_TRACES_PROTOCOL"] == "grpc"
    assert flag(grpc.command(), "--otlp-traces-endpoint") == "http://jaeger:4317"
    http = VLLMServerConfig(
        model="m", otlp_traces_endpoint="http://jaeger:4318", otlp_traces_protocol="http/protobuf"
    )
    assert http.environment()["OTEL_EXPORTER_OTLP_TRACES_PROTOCOL"] == "http/protobuf"
    # vLLM's HTTP exporter posts to the endpoint as given: it needs the traces path.
    assert flag(http.command(), "--otlp-traces-endpoint") == "http://jaeger:4318/v1/traces"
    assert serve_llm_config(http)["engine_kwargs"]["otlp_traces_endpoint"].endswith("/v1/traces")
    assert "OTEL_EXPORTER_OTLP_TRACES_PROTOCOL" not in VLLMServerConfig(model="m").environment()


def test_config_is_strict_and_loads_from_yaml(tmp_path: Path) -> None:
    with pytest.raises(ValidationError, match="max_num_sequences"):
        VLLMServerConfig(model="m", max_num_sequences=4)  # type: ignore[call-arg]
    with pytest.raises(ValidationError, match="device"):
        VLLMServerConfig(model="m", device="tpu")  # type: ignore[arg-type]
    path = tmp_path / "serve.yaml"
    path.write_text("model: m\ndevice: cpu\nmax_num_seqs: 4\n")
    assert VLLMServerConfig.from_file(path).max_num_seqs == 4


def test_ray_serve_llm_config_for_gpu() -> None:
    config = VLLMServerConfig(
        model="Qwen/Qwen2.5-7B-Instruct",
        served_model_name="qwen",
        tensor_parallel_size=2,
        max_model_len=8192,
        max_num_seqs=32,
        dtype="bfloat16",
        otlp_traces_endpoint="http://jaeger:4317",
    )
    out = serve_llm_config(config, min_replicas=1, max_replicas=4, accelerator_type="A10G")
    assert out["model_loading_config"] == {
        "model_id": "qwen",
        "model_source": "Qwen/Qwen2.5-7B-Instruct",
    }
    assert out["engine_kwargs"] == {
        "tensor_parallel_size": 2,
        "max_model_len": 8192,
        "max_num_seqs": 32,
        "enable_prefix_caching": True,
        "dtype": "bfloat16",
        "enforce_eager": False,
        "gpu_memory_utilization": 0.9,
        "otlp_traces_endpoint": "http://jaeger:4317",
    }
    assert out["deployment_config"] == {
        "autoscaling_config": {"min_replicas": 1, "max_replicas": 4}
    }
    assert out["accelerator_type"] == "A10G"
    assert "accelerator_config" not in out


def test_ray_serve_llm_config_for_cpu() -> None:
    out = serve_llm_config(VLLMServerConfig(model="m", device="cpu", kv_cache_space_gib=4))
    assert out["accelerator_config"] == {"kind": "cpu"}
    assert "accelerator_type" not in out
    assert out["runtime_env"]["env_vars"]["VLLM_CPU_KVCACHE_SPACE"] == "4"
    with pytest.raises(ModelError, match="accelerator_type needs device gpu"):
        serve_llm_config(VLLMServerConfig(model="m", device="cpu"), accelerator_type="A10G")


def _serve_llm() -> Any:
    try:
        from ray.serve import llm
    except ImportError as exc:  # ray[serve] pulls more than ray itself: skip where it is absent
        pytest.skip(
            f"Ray Serve LLM's dependencies are not installed ({exc}); pip install "
            "'ray[serve]==2.60.0'"
        )
    return llm


def test_ray_serve_llm_accepts_the_config() -> None:
    LLMConfig = _serve_llm().LLMConfig

    gpu = VLLMServerConfig(model="Qwen/Qwen2.5-7B-Instruct", tensor_parallel_size=2)
    checked = LLMConfig(**serve_llm_config(gpu, accelerator_type="A10G", max_replicas=2))
    assert checked.model_id == "Qwen/Qwen2.5-7B-Instruct"
    assert checked.engine_kwargs["tensor_parallel_size"] == 2
    app = build_serve_app(VLLMServerConfig(model="m", device="cpu"))
    assert type(app).__name__ == "Application"


def test_a_server_that_exits_at_start_is_a_clear_error(tmp_path: Path) -> None:
    # An "interpreter" that fails the way vLLM can at start-up: same process handling.
    fake = tmp_path / "python"
    fake.write_text("#!/bin/sh\necho 'loading...'\necho 'CUDA out of memory: pretend'\nexit 3\n")
    fake.chmod(0o755)
    lines: list[str] = []
    config = VLLMServerConfig(model="m", device="cpu", python=str(fake))
    server = VLLMServer(config, on_progress=lambda elapsed, line: lines.append(line))
    with pytest.raises(ModelError, match=r"vLLM exited with code 3 .*: CUDA out of memory"):
        server.start()
    assert "loading..." in lines
    assert server.process is None


def test_a_missing_executable_is_a_clear_error() -> None:
    config = VLLMServerConfig(model="m", device="cpu", python="/nonexistent/python")
    with pytest.raises(ModelError, match=r"cannot start vLLM \(/nonexistent/python\)"):
        VLLMServer(config, on_progress=None).start()


def test_reuses_an_endpoint_already_serving_the_model(fake_endpoint: Any) -> None:
    endpoint = fake_endpoint(models=["smol"])
    config = VLLMServerConfig(model="smol", port=endpoint.port, device="cpu")
    server = VLLMServer(config, on_progress=None).start()
    assert not server.owned
    assert server.process is None
    assert server.url == endpoint.url
    assert {"/health", "/v1/models"} <= {s["path"] for s in endpoint.seen}
    server.stop()  # leaves the endpoint up
    assert server.running()
