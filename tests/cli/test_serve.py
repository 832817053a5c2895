"""`swarmlab serve-model`: the printed command and Ray Serve config, without starting vLLM."""

from __future__ import annotations

import argparse
import shlex

import pytest
import yaml

from swarmlab.cli._serve import add_serve_parser, serve_command


def serve(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="swarmlab")
    add_serve_parser(parser.add_subparsers(dest="command", required=True))
    return serve_command(parser.parse_args(["serve-model", *argv]))


def test_print_command_for_a_gpu_model(capsys: pytest.CaptureFixture[str]) -> None:
    code = serve(["--model", "Qwen/Qwen2.5-7B-Instruct", "--gpu", "--tensor-parallel-size", "4",
                  "--max-num-seqs", "128", "--otlp-traces-endpoint", "http://jaeger:4317",
                  "--print-command"])  # fmt: skip
    assert code == 0
    words = shlex.split(capsys.readouterr().out)
    start = words.index("vllm")
    assert words[start : start + 3] == ["vllm", "serve", "Qwen/Qwen2.5-7B-Instruct"]
    for name, value in [
        ("--tensor-parallel-size", "4"),
        ("--max-num-seqs", "128"),
        ("--port", "8000"),
        ("--dtype", "auto"),
        ("--otlp-traces-endpoint", "http://jaeger:4317"),
    ]:
        assert words[words.index(name) + 1] == value
    assert "--enforce-eager" not in words
    assert "VLLM_TARGET_DEVICE=cpu" not in words


def test_print_command_for_the_bundled_model_on_cpu(capsys: pytest.CaptureFixture[str]) -> None:
    assert serve(["--port", "8123", "--print-command"]) == 0
    words = shlex.split(capsys.readouterr().out)
    assert "VLLM_TARGET_DEVICE=cpu" in words
    assert "VLLM_CPU_KVCACHE_SPACE=2" in words
    assert words[words.index("-m") + 1] == "vllm.entrypoints.openai.api_server"
    model = words[words.index("--model") + 1]
    assert model.endswith("swarmlab/models/SmolLM2-135M-Instruct-bf16")
    assert words[words.index("--served-model-name") + 1] == "SmolLM2-135M-Instruct"
    assert words[words.index("--dtype") + 1] == "bfloat16"
    assert "--enforce-eager" in words
    assert "--enable-prefix-caching" in words


def test_print_serve_config_is_a_ray_serve_application(capsys: pytest.CaptureFixture[str]) -> None:
    assert serve(["--model", "org/model", "--gpu", "--print-serve-config"]) == 0
    app = yaml.safe_load(capsys.readouterr().out)["applications"][0]
    assert app["import_path"] == "ray.serve.llm:build_openai_app"
    llm = app["args"]["llm_configs"][0]
    assert llm["model_loading_config"] == {"model_id": "org/model", "model_source": "org/model"}
    assert llm["engine_kwargs"]["max_model_len"] == 4096


def test_bad_values_exit_2_with_the_flag(capsys: pytest.CaptureFixture[str]) -> None:
    assert serve(["--model", "m", "--max-num-seqs", "0", "--print-command"]) == 2
    assert capsys.readouterr().err.startswith("swarmlab: --max-num-seqs: ")
