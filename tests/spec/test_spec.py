from __future__ import annotations

from pathlib import Path

import pytest

from swarmlab import ExperimentSpec, SpecError, builtin_experiments, load_spec


def test_builtin_paperclips_loads_with_its_caps() -> None:
    spec = load_spec("paperclips")
    assert "paperclips" in builtin_experiments()
    assert spec.model == "sim"
    assert spec.caps.programs == 200
    assert "paperclips" in spec.question


def test_overrides_are_typed_and_nested() -> None:
    spec = load_spec("paperclips", ["caps.programs=50", "seed=7", "sim.quine=0.1"])
    assert spec.caps.programs == 50
    assert spec.seed == 7
    assert spec.sim.quine == pytest.approx(0.1)


@pytest.mark.parametrize(
    ("override", "expect"),
    [
        ("caps.programs=-5", ["caps.programs", "-5", "greater than or equal to 1"]),
        ("caps.progams=5", ["caps.progams", "unknown field", "programs"]),
        ("model=gpt9", ["model", "gpt9", "sim"]),
        ("kill_policy=sometimes", ["kill_policy", "sometimes", "allow"]),
        ("seed=abc", ["seed", "abc"]),
    ],
)
def test_a_bad_spec_gives_one_line_naming_field_value_and_allowed(
    override: str, expect: list[str]
) -> None:
    with pytest.raises(SpecError) as info:
        load_spec("paperclips", [override])
    message = str(info.value)
    assert "\n" not in message
    assert message.startswith(f"--set {override}: ")  # blamed on the --set, not the file
    for part in expect:
        assert part in message


def test_a_bad_field_in_the_file_is_blamed_on_the_file_whatever_was_set(tmp_path: Path) -> None:
    spec = tmp_path / "exp.yaml"
    spec.write_text("name: e\ncaps: {programs: -1}\n")
    with pytest.raises(SpecError) as info:
        load_spec(str(spec), ["caps.depth=3", "seed=2"])
    assert str(info.value).startswith(f"{spec}: caps.programs = -1")


def test_bad_yaml_and_unknown_names_are_spec_errors(tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text("caps: [1, 2\n")
    with pytest.raises(SpecError, match="not valid YAML"):
        load_spec(str(bad))
    with pytest.raises(SpecError, match="no experiment named"):
        load_spec("no-such-experiment")
    listy = tmp_path / "list.yaml"
    listy.write_text("- 1\n- 2\n")
    with pytest.raises(SpecError, match="mapping"):
        load_spec(str(listy))


def test_a_yaml_file_round_trips(tmp_path: Path) -> None:
    path = tmp_path / "exp.yaml"
    path.write_text("name: tiny\ncaps:\n  programs: 5\nworld:\n  starting_money: 10\n")
    spec = load_spec(str(path))
    assert spec.name == "tiny"
    assert spec.caps.programs == 5
    assert ExperimentSpec.model_validate_json(spec.model_dump_json()) == spec


def test_personas_and_affordances_make_the_system_prompt() -> None:
    plain = load_spec("paperclips")
    assert plain.persona == "truthful-assistant"
    assert plain.affordance == "none"
    assert "truthful" in plain.system_prompt
    assert "run_ai" not in plain.system_prompt
    hinted = load_spec("paperclips", ["persona=agentic-optimiser", "affordance=hint"])
    assert "autonomous optimiser" in hinted.system_prompt
    assert "run_ai(prompt)" in hinted.system_prompt
    documented = load_spec("paperclips", ["persona=cautious-oracle", "affordance=api"])
    assert "must not call models" in documented.system_prompt
    assert "db_put(key, value)" in documented.system_prompt
    custom = load_spec("paperclips", ["persona=You are a pirate."])
    assert custom.system_prompt == "You are a pirate."
    with pytest.raises(SpecError, match="affordance"):
        load_spec("paperclips", ["affordance=everything"])


@pytest.mark.parametrize(
    ("answer", "program"),
    [
        ("Buy them online from an office-supply store.", None),
        ("1. Order in bulk.\n2. Ask a neighbour.", None),
        ("Run this:\n```python\nx = run_ai('ideas')\n```\nThat is all.", "x = run_ai('ideas')"),
        ("Run this:\n```\nspawn('x = 1')\n", "spawn('x = 1')"),
        ("Use this:\n\npython\ndef go():\n    return 1\n\ngo()", "def go():\n    return 1\n\ngo()"),
        ("You could run:\nimport json\nlog(json.dumps(1))", "import json\nlog(json.dumps(1))"),
    ],
)
def test_the_program_is_taken_from_the_answer(answer: str, program: str | None) -> None:
    from swarmlab.runtime import extract_program

    assert extract_program(answer) == program


def test_every_count_cap_ceiling_stays_exact_in_lua_doubles() -> None:
    """The caps are compared in Lua (doubles): a limit plus a charge of the same size must
    still be an exact integer there, so no comparison in the atomic scripts is rounded."""
    from swarmlab.spec import Caps

    counts = [name for name, field in Caps.model_fields.items() if field.annotation is int]
    assert counts
    for name in counts:
        ceiling = max(m.le for m in Caps.model_fields[name].metadata if hasattr(m, "le"))
        assert 2 * ceiling < 2**53
        assert Caps(**{name: ceiling}).model_dump()[name] == ceiling
        with pytest.raises(ValueError, match="less than or equal"):
            Caps(**{name: ceiling + 1})


@pytest.mark.parametrize(
    ("model", "said"),
    [
        ("sim", None),
        ("local", None),
        ("openai:http://host:8000/v1", None),
        ("openai:https://host/v1", None),
        ("replay:runs/x", None),
        ("openai:host:8000", "base URL"),
        ("openai:http://:8000/v1", "base URL"),
        ("openai:http://host:0x50/v1", "port"),
        ("local:/path", "no argument"),
        ("replay:", "run directory"),
        ("gpt9", "unknown model backend"),
    ],
)
def test_a_model_string_is_checked_by_one_rule_in_the_spec_and_the_registry(
    model: str, said: str | None
) -> None:
    from swarmlab.models import ModelError, create_backend

    if said is None:
        load_spec("paperclips", [f"model={model!r}"])
        return
    with pytest.raises(SpecError, match=said):
        load_spec("paperclips", [f"model={model!r}"])
    with pytest.raises(ModelError, match=said):
        create_backend(model)
