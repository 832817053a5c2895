"""`swarmlab serve-model`: vLLM's OpenAI-compatible server with swarmlab's settings.

Without `--model` it serves the bundled small model on the CPU (converted once to the cache),
and notes the server so `swarmlab run --model local` on this machine reuses it. It prints the
URL once the server is healthy and serves until Ctrl-C (or SIGTERM), then stops the server.
`--print-command` prints the command and its environment without starting anything;
`--print-serve-config` prints the same settings as a Ray Serve LLM config.
"""

from __future__ import annotations

import argparse
import shlex
import signal
import sys
import time
from pathlib import Path
from types import FrameType
from typing import Any

import yaml

from swarmlab.core import ModelError

from ._common import path_argument
from ._text import terminal_text

__all__ = ["add_serve_parser", "serve_command"]

DTYPES = ("auto", "bfloat16", "float16", "float32")
DEFAULT_PORT = 8000
FALLBACK_GGUF = Path("SmolLM2-135M-Instruct.Q4_1.gguf")  # for printing where it is not installed


def add_serve_parser(sub: Any) -> argparse.ArgumentParser:
    """Add `serve-model` to a subparsers object (`parser.add_subparsers()`)."""
    serve: argparse.ArgumentParser = sub.add_parser(
        "serve-model",
        help="serve a model with vLLM's OpenAI-compatible server",
        description="Start vLLM's OpenAI-compatible server with swarmlab's settings, print its"
        " URL once healthy, and serve until Ctrl-C.",
    )
    serve.add_argument(
        "--model",
        metavar="PATH_OR_NAME",
        help="a model folder or Hugging Face name (default: the bundled small model)",
    )
    serve.add_argument(
        "--gpu", action="store_true", help="serve on GPUs with `vllm serve` (default: CPU build)"
    )
    serve.add_argument("--host", default="127.0.0.1", help="listen address (default 127.0.0.1)")
    serve.add_argument(
        "--port", type=int, default=DEFAULT_PORT, help="port (default 8000; 0 picks a free one)"
    )
    serve.add_argument("--served-model-name", help="name clients ask for (default: the model)")
    serve.add_argument("--max-model-len", type=int, default=4096, help="context length (4096)")
    serve.add_argument(
        "--max-num-seqs", type=int, default=16, help="concurrent sequences batched (16)"
    )
    serve.add_argument("--tensor-parallel-size", type=int, default=1, help="GPUs per replica (1)")
    serve.add_argument(
        "--dtype", choices=DTYPES, help="weights type (default: bfloat16 on CPU, auto on GPU)"
    )
    serve.add_argument(
        "--gpu-memory-utilization", type=float, default=0.9, help="GPU memory share (0.9)"
    )
    serve.add_argument("--kv-cache-gib", type=int, default=2, help="CPU KV cache in GiB (2)")
    serve.add_argument(
        "--enforce-eager",
        action=argparse.BooleanOptionalAction,
        help="skip graph compilation: faster start, slower decoding (default: on for CPU)",
    )
    serve.add_argument(
        "--no-prefix-caching", action="store_true", help="turn off vLLM's prefix caching"
    )
    serve.add_argument("--otlp-traces-endpoint", help="OTLP endpoint for vLLM's request traces")
    serve.add_argument(
        "--otlp-traces-protocol",
        choices=["grpc", "http/protobuf"],
        default="grpc",
        help="OTLP transport of those traces (default grpc)",
    )
    serve.add_argument("--log", type=path_argument, metavar="FILE", help="append output here")
    serve.add_argument(
        "--print-command",
        action="store_true",
        help="print the command and environment, start nothing",
    )
    serve.add_argument(
        "--print-serve-config",
        action="store_true",
        help="print the settings as a Ray Serve LLM config (YAML), start nothing",
    )
    return serve


def serve_command(args: argparse.Namespace) -> int:
    """Run `serve-model`; 0 after a clean stop, 1 if the server cannot start or dies, 2 bad args."""
    from swarmlab.models._vllm import VLLMServerConfig

    dry = args.print_command or args.print_serve_config
    try:
        bundled = args.model is None
        model, name = _model(args.model, args.served_model_name, dry)
        config = VLLMServerConfig(
            model=model,
            served_model_name=name,
            host=args.host,
            port=args.port,
            device="gpu" if args.gpu else "cpu",
            max_model_len=args.max_model_len,
            max_num_seqs=args.max_num_seqs,
            enable_prefix_caching=not args.no_prefix_caching,
            dtype=args.dtype or ("auto" if args.gpu else "bfloat16"),
            tensor_parallel_size=args.tensor_parallel_size,
            gpu_memory_utilization=args.gpu_memory_utilization,
            enforce_eager=args.enforce_eager if args.enforce_eager is not None else not args.gpu,
            kv_cache_space_gib=args.kv_cache_gib,
            otlp_traces_endpoint=args.otlp_traces_endpoint,
            otlp_traces_protocol=args.otlp_traces_protocol,
            python=None if args.gpu else _python(dry),
        )
    except ModelError as exc:
        print(f"swarmlab: {terminal_text(exc)}", file=sys.stderr)
        return 1
    except ValueError as exc:  # pydantic's ValidationError: a bad flag value
        error = exc.errors()[0] if hasattr(exc, "errors") else {"loc": (), "msg": str(exc)}
        field = "--" + "-".join(str(p) for p in error["loc"]).replace("_", "-")
        print(f"swarmlab: {field}: {terminal_text(error['msg'])}", file=sys.stderr)
        return 2
    if args.print_command:
        env = " ".join(f"{k}={shlex.quote(v)}" for k, v in config.environment().items())
        print(f"{env} {shlex.join(config.command())}".strip())
    if args.print_serve_config:
        from swarmlab.models._vllm import serve_llm_config

        app = {
            "applications": [
                {
                    "name": "swarmlab-llm",
                    "route_prefix": "/",
                    "import_path": "ray.serve.llm:build_openai_app",
                    "args": {"llm_configs": [serve_llm_config(config)]},
                }
            ]
        }
        print(yaml.safe_dump(app, sort_keys=False), end="")
    if dry:
        return 0
    try:
        return _serve(config, args.log, record=bundled)
    except ModelError as exc:
        print(f"swarmlab: {terminal_text(exc)}", file=sys.stderr)
        return 1


def _model(model: str | None, served: str | None, dry: bool) -> tuple[str, str | None]:
    """The model argument and served name; the bundled model is converted first if needed."""
    if model is not None:
        return model, served
    from swarmlab.models._local import (
        bundled_gguf,
        converted_dir,
        ensure_converted,
        served_name,
        vllm_python,
    )

    if dry:
        try:
            gguf = bundled_gguf()
        except ModelError:
            gguf = FALLBACK_GGUF
        return str(converted_dir(gguf)), served or served_name(gguf)
    gguf = bundled_gguf()
    folder = ensure_converted(gguf, python=vllm_python(), on_progress=_progress)
    return str(folder), served or served_name(gguf)


def _python(dry: bool) -> str:
    from swarmlab.models._local import vllm_python

    try:
        return vllm_python()
    except ModelError:
        if dry:
            return sys.executable
        raise


def _serve(config: Any, log: Path | None, *, record: bool) -> int:
    from swarmlab.models._local import forget_server, record_server
    from swarmlab.models._vllm import VLLMServer

    def on_term(signum: int, frame: FrameType | None) -> None:
        raise KeyboardInterrupt

    previous = signal.signal(signal.SIGTERM, on_term)
    server = VLLMServer(config, log_path=log, on_progress=_progress)
    try:
        server.start()
        if record and server.owned:
            record_server(server)
        print(server.url, flush=True)
        print(
            f"swarmlab: serving {server.model_name} at {server.url}; use it with"
            f" --model openai:{server.url} --set model_name={server.model_name}"
            " (Ctrl-C stops it)",
            file=sys.stderr,
            flush=True,
        )
        while server.running():
            time.sleep(1.0)
        code = server.process.poll() if server.process is not None else None
        tail = next((ln for ln in reversed(server.log_tail()) if ln.strip()), "")
        print(
            f"swarmlab: vLLM stopped (exit code {code}): {terminal_text(tail[-300:])}",
            file=sys.stderr,
        )
        return 1
    except KeyboardInterrupt:
        print("swarmlab: stopping vLLM", file=sys.stderr)
        return 0
    finally:
        server.stop()
        if record and server.owned:
            forget_server()
        signal.signal(signal.SIGTERM, previous)


def _progress(elapsed: float, line: str) -> None:
    print(f"vllm [{elapsed:5.1f}s] {terminal_text(line)}", file=sys.stderr, flush=True)
