"""The capability API's texts come from its declarations: the bottom layer's copy
(swarm/core/_program_api.py), docs/capabilities.md's reference and the persona's API text (what
models see) say exactly what the runtime's `Capabilities` and swarm/core/_api.py declare, and a
capability written as one method of `Capabilities` reaches all three."""

from __future__ import annotations

import importlib.util
import re
import shutil
from pathlib import Path
from types import ModuleType

import pytest

from swarmlab.core import CAPABILITIES, WORLD_ACTIONS, capability, declared_capabilities
from swarmlab.runtime._capabilities import Capabilities
from swarmlab.runtime._sandbox import Park
from swarmlab.runtime._transitions import BlackboardArgs
from swarmlab.spec import system_prompt

REPO = Path(__file__).resolve().parents[2]
# A call as the texts write it: a name (world actions with their prefix) and its parameters.
CALL = re.compile(r"^(?:- |### `)((?:world\.)?[a-z_]+)\(([^)]*)\)", re.MULTILINE)


def _generator() -> ModuleType:
    spec = importlib.util.spec_from_file_location(
        "gen_capabilities", REPO / "scripts" / "gen_capabilities.py"
    )
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _declared(types: bool) -> dict[str, str]:
    calls = [c.call_text(types=types) for c in CAPABILITIES.values()]
    calls += [a.call_text(types=types) for a in WORLD_ACTIONS.values()]
    return {call.split("(", 1)[0]: call.split("(", 1)[1].split(")", 1)[0] for call in calls}


def test_the_committed_texts_are_the_generated_ones() -> None:
    gen = _generator()
    assert gen.main(["--check"]) == 0, "run: python scripts/gen_capabilities.py"


def test_the_persona_names_every_declared_call_with_its_parameters_and_nothing_else() -> None:
    text = (REPO / "swarm" / "spec" / "personas" / "capability-api.md").read_text()
    assert dict(CALL.findall(text)) == _declared(types=False)
    assert len(CALL.findall(text)) == len(_declared(types=False))  # none listed twice
    for c in CAPABILITIES.values():
        assert f"{c.call_text()}: {c.summary}" in text
    assert text.strip() in system_prompt("truthful-assistant", "api")


def test_the_reference_lists_every_declared_call_with_its_types_and_charges() -> None:
    text = (REPO / "docs" / "capabilities.md").read_text()
    assert dict(CALL.findall(text)) == _declared(types=True)
    for c in CAPABILITIES.values():
        entry = text.split(f"### `{c.call_text(types=True)}`", 1)[1].split("\n#", 1)[0]
        charged = "nothing" if not c.charges else ", ".join(f"`{n}`" for n in c.charges)
        assert f"charges {charged};" in entry, c.name


TEXTS = ("API", "DOC", "PERSONA")


def _generator_on_copies(tmp_path: Path) -> ModuleType:
    """The generator, writing copies of its texts under `tmp_path`."""
    gen = _generator()
    for name in TEXTS:
        copy = tmp_path / Path(getattr(gen, name)).name
        shutil.copy(getattr(gen, name), copy)
        setattr(gen, name, copy)
    setattr(gen, "ROOT", tmp_path)  # noqa: B010 (a module loaded from a file)
    return gen


@pytest.mark.parametrize("which", TEXTS)
def test_the_check_fails_on_a_text_that_drifted(
    which: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    gen = _generator_on_copies(tmp_path)
    drifted: Path = getattr(gen, which)
    drifted.write_text(drifted.read_text().replace("256", "512", 1))
    assert gen.main(["--check"]) == 1
    assert drifted.name in capsys.readouterr().out
    assert gen.main([]) == 0  # rewritten from the declarations
    assert gen.main(["--check"]) == 0


class _WithOneMore(Capabilities):
    """The runtime with one more capability on an existing transition, written as the docs say:
    one method, its mark, its types and its docstring."""

    @capability("blackboard", scripts=("blackboard:get",))
    async def db_has(self, key: str) -> bool | Park:
        """Whether a key of the shared database holds a value.

        Reads the key as `db_get` does.
        """
        self._check_key("db_has", key)
        reply = await self.transition(BlackboardArgs("get", key))
        if isinstance(reply, Park):
            return reply
        self.event("db_has", "allowed", detail={"key": key})
        return bool(reply.values and reply.values[0])


def test_a_capability_written_as_one_runtime_method_reaches_every_derived_text(
    tmp_path: Path,
) -> None:
    gen = _generator_on_copies(tmp_path)
    setattr(gen, "Capabilities", _WithOneMore)  # noqa: B010 (a module loaded from a file)
    assert gen.main(["--check"]) == 1  # every text misses it
    assert gen.main([]) == 0
    api = gen.API.read_text()
    namespace: dict[str, object] = {}
    source = api.replace("from ._declaring", "from swarmlab.core._declaring")
    exec(compile(source, str(gen.API), "exec"), namespace)  # noqa: S102 (the lab's generated module)
    copy = declared_capabilities(namespace["ProgramAPI"])  # type: ignore[arg-type]
    assert list(copy) == [*CAPABILITIES, "db_has"]
    assert copy["db_has"].call_text(types=True) == "db_has(key: str) -> bool"
    assert (copy["db_has"].role, copy["db_has"].scripts) == ("blackboard", ("blackboard:get",))
    assert "- db_has(key) -> bool: Whether a key of the shared database holds a value." in (
        gen.PERSONA.read_text()
    )
    assert "### `db_has(key: str) -> bool`" in gen.DOC.read_text()
    assert "Reads the key as `db_get` does." in gen.DOC.read_text()
    assert gen.main(["--check"]) == 0
