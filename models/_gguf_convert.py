"""Convert a GGUF model file into a bf16 safetensors folder vLLM's CPU build can load.

A standalone script (`python _gguf_convert.py GGUF OUT_DIR`), run in the interpreter that runs
vLLM: it needs torch, transformers, gguf and accelerate (the `local` extra), not swarmlab.
"""

from __future__ import annotations

import contextlib
import json
import sys
from pathlib import Path


def convert_gguf(gguf: Path, out_dir: Path) -> Path:
    """Write a bf16 safetensors model folder vLLM can load from a GGUF file (in this process).

    Needs torch, transformers, gguf and accelerate (the `local` extra).
    """
    import torch
    from safetensors.torch import save_file
    from transformers import AutoModelForCausalLM, AutoTokenizer

    folder, name = str(gguf.parent), gguf.name
    tokenizer = AutoTokenizer.from_pretrained(folder, gguf_file=name)
    model = AutoModelForCausalLM.from_pretrained(folder, gguf_file=name, dtype=torch.bfloat16)
    out_dir.mkdir(parents=True, exist_ok=True)
    state = {k: v.detach().to(torch.bfloat16).contiguous() for k, v in model.state_dict().items()}
    if model.config.tie_word_embeddings:
        state.pop("lm_head.weight", None)  # the same tensor as the embeddings: saved once
    save_file(state, str(out_dir / "model.safetensors"), metadata={"format": "pt"})
    config = model.config.to_dict()
    config.pop("quantization_config", None)  # the weights are plain bf16 now
    config.pop("_name_or_path", None)
    config["architectures"] = config.get("architectures") or [type(model).__name__]
    config["dtype"] = "bfloat16"
    (out_dir / "config.json").write_text(json.dumps(config, indent=2, default=str))
    with contextlib.suppress(Exception):  # optional: sampling defaults of the model
        model.generation_config.save_pretrained(str(out_dir))
    if not tokenizer.chat_template:
        raise RuntimeError(f"{name} carries no chat template")
    tokenizer.save_pretrained(str(out_dir))
    return out_dir


def main(argv: list[str]) -> int:
    if len(argv) != 2:
        print("usage: python _gguf_convert.py GGUF OUT_DIR", file=sys.stderr)
        return 2
    convert_gguf(Path(argv[0]), Path(argv[1]))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
