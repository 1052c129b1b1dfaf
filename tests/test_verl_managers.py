"""veRL's own reward managers drive examples/verl_reward.py (not calls shaped like veRL's).

veRL 0.9.1 is installed without its GPU training deps (``make venv-verl``, built by ``make test``). Its
loader ``verl.trainer.ppo.reward.get_custom_reward_fn`` loads the reward file from the trainer config's
``reward.custom_reward_function``; the legacy managers ``verl.workers.reward_manager`` ``naive`` and
``batch`` and the reward-loop ``naive`` manager (what ``main_ppo``'s reward workers run in 0.9) decode a
``DataProto`` rollout batch tokenized by the kit tokenizer and place each sequence reward on the
response's last valid token. A scripted oracle judge gives exact values; the tiny model runs a smoke
pass through ``$GENRM_CONFIG``. A reward file whose signature drifts from veRL's call fails here.
"""

from __future__ import annotations

import textwrap

import pytest
import torch

verl_managers = pytest.importorskip(
    "verl.workers.reward_manager",
    reason="veRL's reward managers are not installed: run `make venv-verl` (`make test` builds it)",
)

from verl_kit import (  # noqa: E402
    MANAGER_FUNCTIONS,
    ROLLOUTS,
    expected_win_probs,
    last_token_positions,
    legacy_manager,
    loop_manager,
    oracle,
    reference_of,
    rollout_batch,
    score_legacy,
    score_loop,
    scripted_reward,
    use_tiny_judge,
)

from genrm_plugin.integrations import verl as verl_integration  # noqa: E402
from genrm_plugin.testing import split_judge_prompt  # noqa: E402


@pytest.fixture(scope="module")
def tokenizer():
    from genrm_plugin.toy import build_tokenizer

    return build_tokenizer()


@pytest.fixture
def scripted(monkeypatch):
    """The scripted oracle reward is what the reward file's ``default_reward()`` returns; records the judge's view."""
    reward = scripted_reward(mapping="centered")
    seen = []
    reward.reward.judge.backend.script = lambda prompt, i: (seen.append(split_judge_prompt(prompt)), oracle(prompt, i))[1]
    reward.seen = seen
    monkeypatch.setattr(verl_integration, "default_reward", lambda: reward)
    return reward


def assert_on_last_tokens(reward_tensor: torch.Tensor, data, values: list[float], eos_id: int) -> None:
    """Each value sits on its response's last valid token (the EOS), every other position is 0."""
    positions = last_token_positions(data)
    rows = torch.arange(len(values))
    assert reward_tensor.shape == data.batch["responses"].shape and reward_tensor.dtype == torch.float32
    assert torch.equal(data.batch["responses"][rows, positions], torch.full((len(values),), eos_id))
    assert reward_tensor[rows, positions].tolist() == pytest.approx(values, abs=1e-6)
    rest = reward_tensor.clone()
    rest[rows, positions] = 0.0
    assert not rest.any()


@pytest.mark.parametrize("name", sorted(MANAGER_FUNCTIONS))
def test_legacy_manager_scores_exactly(name, tokenizer, scripted):
    data = rollout_batch(tokenizer, ROLLOUTS)
    manager = legacy_manager(name, tokenizer, reward_kwargs={"genrm_note": "veRL merges reward_kwargs in"}, num_examine=1)
    assert type(manager) is verl_managers.get_reward_manager_cls(name)
    assert type(manager).__module__ == f"verl.workers.reward_manager.{name}"
    out = manager(data, return_dict=True)

    probs = expected_win_probs(ROLLOUTS)
    assert_on_last_tokens(out["reward_tensor"], data, [2 * p - 1 for p in probs], tokenizer.eos_token_id)
    info = out["reward_extra_info"]
    assert info["win_prob"] == pytest.approx(probs, abs=1e-9)
    assert info["score"] == pytest.approx([2 * p - 1 for p in probs], abs=1e-9)
    assert info["abstained"] == [float(r.win_prob is None) for r in ROLLOUTS]
    # The judge saw veRL's decoded response (EOS stripped), the question from extra_info and the reference.
    shown = {(q, frozenset((a, b))) for q, a, b in scripted.seen}
    for r in ROLLOUTS:
        assert (r.question, frozenset((r.response, reference_of(r)))) in shown
    calls = scripted.reward.judge.backend.calls
    if name == "batch":  # one judge call (both answer orders) for the whole batch
        assert calls == [("generate", 2 * len(ROLLOUTS), 3)]
        assert data.batch["acc"].tolist() == pytest.approx([2 * p - 1 for p in probs])
    else:  # naive: one compute_score call, hence one judge call, per response
        assert calls == [("generate", 2, 3)] * len(ROLLOUTS)


def test_reward_loop_manager_scores_exactly(tokenizer, scripted):
    from verl.experimental.reward_loop.reward_manager import get_reward_manager_cls

    data = rollout_batch(tokenizer, ROLLOUTS)
    manager = loop_manager(tokenizer)
    assert type(manager) is get_reward_manager_cls("naive")
    scores, infos = score_loop(manager, data)
    probs = expected_win_probs(ROLLOUTS)
    assert_on_last_tokens(scores, data, [2 * p - 1 for p in probs], tokenizer.eos_token_id)
    assert [i["win_prob"] for i in infos] == pytest.approx(probs, abs=1e-9)


DRIFTED = {
    "naive": """
        from genrm_plugin.integrations.verl import compute_score as _shipped

        def compute_score(data_source, response, ground_truth, extra_info=None):  # renamed solution_str
            return _shipped(data_source, response, ground_truth, extra_info)
    """,
    "batch": """
        from genrm_plugin.integrations.verl import compute_score_batch as _shipped

        def compute_score_batch(data_sources, solution_strs, ground_truths):  # no extra_infos
            return _shipped(data_sources, solution_strs, ground_truths)
    """,
}


@pytest.mark.parametrize("name", sorted(DRIFTED))
def test_drifted_signature_fails_under_verl(name, tokenizer, scripted, tmp_path):
    drifted = tmp_path / "drifted_reward.py"
    drifted.write_text(textwrap.dedent(DRIFTED[name]))
    manager = legacy_manager(name, tokenizer, path=drifted)
    with pytest.raises(TypeError, match="unexpected keyword argument"):
        manager(rollout_batch(tokenizer, ROLLOUTS[:2]), return_dict=True)


def test_tiny_model_smoke_through_genrm_config(tokenizer, tmp_path, monkeypatch):
    use_tiny_judge(tmp_path, monkeypatch, "mode: no_cot\nswap: true\nmapping: logit\n")
    data = rollout_batch(tokenizer, ROLLOUTS)
    naive = score_legacy("naive", tokenizer, data)
    batch = score_legacy("batch", tokenizer, data)

    built = verl_integration.default_reward()
    assert built.reward.judge.config.mode == "no_cot" and built.reward.config.mapping == "logit"
    references = [reference_of(r) for r in ROLLOUTS]
    prefs = built.reward.preferences([r.question for r in ROLLOUTS], [r.response for r in ROLLOUTS], references)
    expected = [built.reward.reward_of(p) for p in prefs]
    for out in (naive, batch):
        assert_on_last_tokens(out["reward_tensor"], data, expected, tokenizer.eos_token_id)
        assert out["reward_extra_info"]["win_prob"] == pytest.approx([p.p_a for p in prefs], abs=1e-5)
        assert out["reward_extra_info"]["abstained"] == [0.0] * len(ROLLOUTS)
    # The reward loop calls compute_score from its executor threads, all rows at once, on one judge.
    scores, infos = score_loop(loop_manager(tokenizer), data)
    assert_on_last_tokens(scores, data, expected, tokenizer.eos_token_id)
    assert [i["win_prob"] for i in infos] == pytest.approx([p.p_a for p in prefs], abs=1e-5)
