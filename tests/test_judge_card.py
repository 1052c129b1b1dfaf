"""A trained judge's card is its defaults: unset settings come from ``genrm_card.json``, a flag (or
YAML key, or a non-default Python value) that contradicts the card wins with a warning naming both
values, and a BT reward model's card is refused as a generative judge."""

from __future__ import annotations

import json
import logging

import pytest

from genrm_plugin.cli import main
from genrm_plugin.config_parser import parse_configs
from genrm_plugin.settings import Settings
from genrm_plugin.judge import GenerativeJudge, JudgeConfig
from genrm_plugin.judge_card import CARD_FILE, apply_card
from genrm_plugin.toy import save_tiny

CARD_JUDGE = {"mode": "no_cot", "template": "compact", "answer_pattern": r">(\d+)", "k": 3, "max_new_tokens": 12}


@pytest.fixture(scope="module")
def judge_folder(tmp_path_factory):
    folder = save_tiny(tmp_path_factory.mktemp("judge") / "final")
    (folder / CARD_FILE).write_text(json.dumps({"recipe": "star-sft", "kind": "judge", "judge": CARD_JUDGE}))
    return folder


def test_unset_fields_take_the_card(judge_folder, caplog):
    with caplog.at_level(logging.WARNING, logger="genrm_plugin"):
        config = apply_card(JudgeConfig(), judge_folder)
    assert {k: getattr(config, k) for k in CARD_JUDGE} == CARD_JUDGE
    assert config.swap is True and config.temperature == 1.0  # not on the card: untouched
    assert caplog.records == []


def test_a_flag_that_contradicts_the_card_wins_with_a_warning(judge_folder, caplog, tmp_path):
    (flagged,) = parse_configs((JudgeConfig,), ["--mode", "cot", "--k", "3"], "t")
    with caplog.at_level(logging.WARNING, logger="genrm_plugin"):
        config = apply_card(flagged, judge_folder)
    assert config.mode == "cot" and config.template == "compact" and config.k == 3
    assert len(caplog.records) == 1  # --k agrees with the card: no warning
    message = caplog.records[0].getMessage()
    assert "mode='cot' contradicts the judge card's mode='no_cot'" in message and str(judge_folder) in message
    # a YAML key counts as set too, even when it equals the dataclass default
    yaml = tmp_path / "j.yaml"
    yaml.write_text("template: mt_bench\n")
    (from_yaml,) = parse_configs((JudgeConfig,), ["--config", str(yaml)], "t")
    assert apply_card(from_yaml, judge_folder).template == "mt_bench"


def test_python_api_non_defaults_win(judge_folder, caplog):
    with caplog.at_level(logging.WARNING, logger="genrm_plugin"):
        config = apply_card(JudgeConfig(template="tiny"), judge_folder)
    assert config.template == "tiny" and config.mode == "no_cot"
    assert "template='tiny' contradicts" in caplog.records[0].getMessage()
    judge = GenerativeJudge.from_pretrained(str(judge_folder))
    assert judge.config.mode == "no_cot" and judge.config.answer_pattern == CARD_JUDGE["answer_pattern"]


def test_cli_and_reward_stack_read_the_card(judge_folder, capsys):
    from genrm_plugin.backends.factory import BackendConfig

    assert main(["judge", "--model", str(judge_folder), "--no_swap"]) == 0
    assert "mode=no_cot template=compact k=3" in capsys.readouterr().out
    reward = Settings(backend=BackendConfig(model=str(judge_folder))).build_reward()
    assert reward.judge.config.mode == "no_cot" and reward.judge.config.max_new_tokens == 12


def test_bt_card_and_broken_card_are_refused(tmp_path):
    bt = tmp_path / "bt"
    bt.mkdir()
    (bt / CARD_FILE).write_text(json.dumps({"kind": "bt", "judge": {"kind": "bt"}}))
    with pytest.raises(ValueError, match="Bradley-Terry reward model.*BTScorer"):
        apply_card(JudgeConfig(), bt)
    (bt / CARD_FILE).write_text("{not json")
    with pytest.raises(ValueError, match="not a readable judge card"):
        apply_card(JudgeConfig(), bt)
    assert apply_card(JudgeConfig(k=2), tmp_path / "no-card").k == 2
    assert apply_card(JudgeConfig(), "org/hub-model-name").mode == "cot"
