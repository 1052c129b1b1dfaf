"""`genrm <command> --help`: every config field's doc, default and choices, from the one source.

The docs come from each config dataclass's ``Fields:`` docstring section (or, for TRL's own trainer
arguments, their ``help`` metadata); :func:`genrm_plugin.config_parser.field_docs` parses the section.
"""

import dataclasses
import re
from dataclasses import dataclass, field

import pytest

import genrm_plugin.config_parser as config_module
from genrm_plugin.cli import available_commands, main
from genrm_plugin.commands.eval import EVALS
from genrm_plugin.config_parser import ConfigError, field_docs, missing_field_docs, parse_configs

COMMANDS = [[name] for name in sorted(available_commands()) if name != "eval"] + [["eval", name] for name in EVALS]


def help_blocks(text: str) -> dict[str, str]:
    """``--flag`` -> its help text, from argparse's ``options:`` listing."""
    blocks: dict[str, str] = {}
    current: list[str] = []
    for line in text.split("options:", 1)[1].splitlines():
        if re.match(r"^  -", line):
            invocation, _, rest = line.strip().partition("  ")
            current = [rest.strip()]
            for flag in re.findall(r"(--[\w-]+)", invocation):
                blocks[flag] = current
        elif line.startswith("   ") and current is not None:
            current.append(line.strip())
    return {flag: " ".join(part for part in parts if part) for flag, parts in blocks.items()}


def command_help(argv, monkeypatch, capsys):
    """(help text, the dataclasses the command parses) of ``genrm <argv> --help``."""
    seen = []
    original = config_module.parse_configs

    def recording(types, args, prog):
        seen.extend(types)
        return original(types, args, prog)

    monkeypatch.setattr(config_module, "parse_configs", recording)
    monkeypatch.setenv("COLUMNS", "1000")  # no line wrapping inside words like star-rationalizer
    with pytest.raises(SystemExit) as exit_info:
        main([*argv, "--help"])
    assert exit_info.value.code == 0
    return capsys.readouterr().out, seen


@pytest.mark.parametrize("argv", COMMANDS, ids=" ".join)
def test_every_field_of_every_command_has_help_with_its_default(argv, monkeypatch, capsys):
    text, types = command_help(argv, monkeypatch, capsys)
    assert types, f"genrm {' '.join(argv)} parsed no config dataclass"
    blocks = help_blocks(text)
    assert "UNDOCUMENTED" not in text
    for cls in types:
        for f in dataclasses.fields(cls):
            if not f.init:
                continue
            flag = f"--{f.name}"
            if f.name == "debug" and flag in blocks:  # TrainingArguments.debug shares genrm's --debug
                continue
            assert flag in blocks, f"{cls.__name__}.{f.name} has no flag in `genrm {' '.join(argv)} --help`"
            described = re.sub(r"\(default: .*?\)$|\(default:.*", "", blocks[flag]).strip()
            assert described, f"{flag} ({cls.__name__}) has no help text"
            if not isinstance(f.metadata.get("help"), str) or cls.__module__.startswith("genrm_plugin"):
                assert "default:" in blocks[flag], f"{flag} does not show its default"


def test_help_shows_docs_defaults_and_choices(monkeypatch, capsys):
    text, _ = command_help(["judge"], monkeypatch, capsys)
    blocks = help_blocks(text)
    assert blocks["--k"].startswith("votes per answer order in CoT mode") and "(default: 8)" in blocks["--k"]
    assert "choices: cot, no_cot" in blocks["--mode"] and "choices: off, cannot_flip, bayes" in blocks["--adaptive"]
    assert "choices: mt_bench, compact, tiny" in blocks["--template"]
    # a multi-name entry ("temperature, top_p, top_k, max_new_tokens: sampling ...") documents each
    assert blocks["--top_p"].startswith("sampling") and "(default: 0.95)" in blocks["--top_p"]
    assert "--tensor_parallel_size" in blocks and "--base_urls" in blocks  # the backend flags of `genrm eval`
    text, _ = command_help(["train"], monkeypatch, capsys)
    assert "choices: bt, genrm, star-sft, star-dpo, star-rationalizer, judge-zero-shot, synthetic-critique-rm, cloud" in help_blocks(text)["--recipe"]


def test_yaml_values_show_as_defaults_in_help(tmp_path, capsys):
    path = tmp_path / "judge.yaml"
    path.write_text("k: 5\n")
    with pytest.raises(SystemExit):
        main(["judge", "--config", str(path), "--help"])
    assert "(default: 5)" in help_blocks(capsys.readouterr().out)["--k"]


@dataclass
class Documented:
    """A config.

    Fields:
        alpha: first line
            continued here, with ``code`` and :class:`~genrm_plugin.judge.JudgeConfig`.
        beta, gamma: shared doc: 50% of it.

    Not part of the section: delta: ignored.
    """

    alpha: int = 1
    beta: str = field(default="x", metadata={"choices": ("x", "y")})
    gamma: float = 0.5
    delta: int = 0


def test_field_docs_parses_multiline_and_shared_entries_and_reports_gaps():
    docs = field_docs(Documented)
    assert docs["alpha"] == "first line continued here, with `code` and JudgeConfig."
    assert docs["beta"] == docs["gamma"] == "shared doc: 50% of it."
    assert "delta" not in docs and missing_field_docs(Documented) == ["delta"]


def test_an_undocumented_field_is_flagged_in_help_and_choices_are_enforced(capsys):
    with pytest.raises(SystemExit):
        parse_configs((Documented,), ["--help"], "genrm test")
    blocks = help_blocks(capsys.readouterr().out)
    assert blocks["--delta"].startswith("UNDOCUMENTED: add 'delta: ...' to the Fields: section of Documented")
    assert "50% of it" in blocks["--beta"] and "choices: x, y" in blocks["--beta"]
    with pytest.raises(ConfigError, match=r"argument --beta: invalid choice: 'z'"):
        parse_configs((Documented,), ["--beta", "z"], "genrm test")


def test_every_config_of_the_package_documents_every_field(monkeypatch, capsys):
    """The check above, stated directly: no command's dataclass has an undocumented field."""
    for argv in COMMANDS:
        _, types = command_help(argv, monkeypatch, capsys)
        for cls in types:
            assert missing_field_docs(cls) == [], f"{cls.__name__} ({' '.join(argv)})"
