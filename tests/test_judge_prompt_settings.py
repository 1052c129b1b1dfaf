"""``system_prompt`` and ``use_system_role`` reach the judge's prompt from flags and from YAML."""

from __future__ import annotations

from genrm_plugin.config_parser import parse_configs
from genrm_plugin.judge import JudgeConfig
from genrm_plugin.prompts import judge_messages


def test_system_prompt_from_flags_reaches_the_prompt():
    (judge,) = parse_configs((JudgeConfig,), ["--system_prompt", "Judge like a pirate.", "--use_system_role", "false"], "t")
    assert judge.system_prompt == "Judge like a pirate." and judge.use_system_role is False
    rendered = judge_messages("q", "a", "b", config=judge.prompt())
    assert [m["role"] for m in rendered] == ["user"]
    assert rendered[0]["content"].startswith("Judge like a pirate.\n\n")


def test_system_prompt_from_yaml(tmp_path):
    path = tmp_path / "genrm.yaml"
    path.write_text("system_prompt: Be terse.\nuse_system_role: true\nk: 2\n")
    (judge,) = parse_configs((JudgeConfig,), ["--config", str(path)], "t")
    rendered = judge_messages("q", "a", "b", config=judge.prompt())
    assert rendered[0] == {"role": "system", "content": "Be terse."}
    assert judge.k == 2
