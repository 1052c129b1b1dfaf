"""``genrm train`` at real scale, checked on the tiny kit: TRL arguments pass through unchanged, LoRA
trains adapters only and leaves a plain judge, engines run on the accelerator when there is one
(checked with a faked CUDA report), and runs that keep no training example stop loudly.
"""

from __future__ import annotations

import json
import types
from pathlib import Path

import pytest
from recipe_kit import one_torch_thread, synthetic_data, tiny_configs, warm_judge  # noqa: F401  (fixtures)

from genrm_plugin.judge import GenerativeJudge, JudgeConfig
from genrm_plugin.recipes.config import TrainConfig
from genrm_plugin.recipes.trainers import trl_args


def _recording(config_cls):
    """``config_cls`` without transformers' environment checks (a DeepSpeed config needs deepspeed installed)."""
    return type(f"Recording{config_cls.__name__}", (config_cls,), {"__post_init__": lambda self: None})


# -- (a) every TRL argument passes through -------------------------------------------------------------
def test_trl_arguments_reach_the_trl_configs_unchanged(tmp_path):
    from trl import DPOConfig, RewardConfig, SFTConfig

    train = TrainConfig(report_to="wandb", logging_steps=7, push_to_hub=True, hub_model_id="me/judge",
                        save_strategy="steps", save_steps=3, torch_compile=False, optim="adafactor", beta=0.3)
    for config_cls in (SFTConfig, DPOConfig, RewardConfig):
        args = trl_args(config_cls, train, tmp_path / "out", 1e-4, 5)
        assert (args.report_to, args.logging_steps, args.push_to_hub, args.hub_model_id) == (["wandb"], 7, True, "me/judge")
        assert (args.save_strategy, args.save_steps, args.optim, args.seed) == ("steps", 3, "adafactor", 5)
    assert trl_args(DPOConfig, train, tmp_path, 1e-4, 0).beta == 0.3  # genrm's DPO field, DPO only
    # a DeepSpeed / FSDP config reaches the config as given (constructing a real one needs deepspeed)
    ds = str(tmp_path / "zero3.json")
    args = trl_args(_recording(SFTConfig), TrainConfig(deepspeed=ds, fsdp="full_shard auto_wrap"), tmp_path, 1e-4, 0)
    assert (args.deepspeed, args.fsdp, args.report_to) == (ds, "full_shard auto_wrap", "none")
    with pytest.raises(ValueError, match="TrainConfig.packing is not a DPOConfig setting"):
        trl_args(DPOConfig, TrainConfig(packing=True), tmp_path, 1e-4, 0)


def test_trl_arguments_as_flags_and_what_a_resume_may_change():
    from genrm_plugin.config_parser import parse_configs
    from genrm_plugin.recipes.runner import train_config_types, train_fingerprint

    argv = ["--recipe", "star-sft", "--report_to", "tensorboard", "--push_to_hub", "--hub_model_id", "me/j",
            "--deepspeed", "examples/accelerate/zero3.json", "--bf16", "--use_peft", "--lora_r", "4",
            "--lora_target_modules", "q_proj", "v_proj", "--tensor_parallel_size", "2", "--gpu_memory_utilization", "0.3"]
    recipe, train, judge, model_args, vllm = parse_configs(train_config_types(), argv, "genrm train")
    assert (train.report_to, train.push_to_hub, train.hub_model_id, train.bf16) == ("tensorboard", True, "me/j", True)
    assert train.deepspeed == "examples/accelerate/zero3.json"
    assert (model_args.use_peft, model_args.lora_r, model_args.lora_target_modules) == (True, 4, ["q_proj", "v_proj"])
    assert (vllm.tensor_parallel_size, vllm.gpu_memory_utilization) == (2, 0.3)
    # reporting and hub settings may change on resume; what shapes the model may not
    base = train_fingerprint(TrainConfig())
    assert train_fingerprint(TrainConfig(report_to="wandb", logging_steps=50, push_to_hub=True)) == base
    assert train_fingerprint(TrainConfig(optim="adafactor")) != base


def test_push_to_hub_uploads_the_final_judge(tmp_path, warm_judge, synthetic_data, monkeypatch):
    import huggingface_hub

    from genrm_plugin.recipes.runner import train_judge

    calls = []
    monkeypatch.setattr(huggingface_hub.HfApi, "create_repo",
                        lambda self, repo_id, **kw: calls.append(("create_repo", repo_id)) or types.SimpleNamespace(repo_id=repo_id))
    monkeypatch.setattr(huggingface_hub.HfApi, "upload_folder",
                        lambda self, repo_id, folder_path, **kw: calls.append(("upload_folder", repo_id, sorted(p.name for p in Path(folder_path).iterdir()))))
    configs = tiny_configs(tmp_path / "run", "genrm", warm_judge, synthetic_data, push_to_hub=True, hub_model_id="me/judge")
    final = train_judge(*configs)
    uploads = [c for c in calls if c[0] == "upload_folder"]
    assert ("create_repo", "me/judge") in calls
    assert len(uploads) == 1 and uploads[0][1] == "me/judge" and "genrm_card.json" in uploads[0][2]  # the final judge, once
    assert final.is_dir()


# -- (b) LoRA -------------------------------------------------------------------------------------------
def test_lora_trains_adapters_only_and_leaves_a_plain_judge(tmp_path, warm_judge, synthetic_data):
    import torch
    from safetensors.torch import load_file
    from transformers import AutoModelForCausalLM, AutoTokenizer
    from trl import ModelConfig

    from genrm_plugin.backends.transformers import TransformersBackend
    from genrm_plugin.recipes.runner import train_judge

    model_args = ModelConfig(use_peft=True, lora_r=4, lora_alpha=8, lora_dropout=0.0, lora_target_modules=["q_proj", "v_proj"])
    final = train_judge(*tiny_configs(tmp_path / "run", "genrm", warm_judge, synthetic_data), model_args=model_args)
    adapter = load_file(str(tmp_path / "run" / "iter-1" / "model" / "adapter" / "adapter_model.safetensors"))
    lora_b = [v for k, v in adapter.items() if "lora_B" in k]
    assert lora_b and all(v.abs().sum() > 0 for v in lora_b)  # LoRA's B starts at zero: the adapters trained
    base, merged = load_file(str(warm_judge / "model.safetensors")), load_file(str(final / "model.safetensors"))
    assert base.keys() == merged.keys()
    targets = {k for k in base if k.endswith(("q_proj.weight", "v_proj.weight"))}
    assert targets and all(torch.equal(base[k], merged[k]) for k in base if k not in targets)  # base weights untouched
    assert all(not torch.equal(base[k], merged[k]) for k in targets)  # only the adapted ones moved (merged in)
    plain = AutoModelForCausalLM.from_pretrained(str(final))  # no peft needed to load it
    judge = GenerativeJudge(TransformersBackend(plain, AutoTokenizer.from_pretrained(str(final))),
                            JudgeConfig(mode="no_cot", template="compact"))
    p = judge.compare(["What is 2+2?"], ["4"], ["5"])[0]
    assert 0.0 <= p.p_a <= 1.0


# -- (c) devices ------------------------------------------------------------------------------------------
def test_engines_use_the_accelerator_when_torch_reports_one(tmp_path, monkeypatch, synthetic_data):
    import torch

    from genrm_plugin.backends import factory
    from genrm_plugin.backends.transformers import TransformersBackend
    from genrm_plugin.bt_scorer import BTScorer
    from genrm_plugin.recipes.context import RecipeContext
    from genrm_plugin.recipes.trainers import trl_args as make_args
    from trl import SFTConfig

    asked = []
    monkeypatch.setattr(TransformersBackend, "from_pretrained",
                        classmethod(lambda cls, path, dtype="auto", device=None, **kw: asked.append(("judge", device, dtype))))
    monkeypatch.setattr(BTScorer, "from_pretrained", classmethod(lambda cls, path, device=None, **kw: asked.append(("bt", device))))
    recipe, train, judge = tiny_configs(tmp_path / "run", "star-sft", "unused", synthetic_data)
    ctx = RecipeContext(recipe, train, judge, run=None, pairs=[], base_model="unused")
    assert factory.default_device() == "cpu"
    ctx.load_judge("ckpt", "cot")
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 2)
    monkeypatch.setenv("LOCAL_RANK", "1")
    assert factory.default_device() == "cuda:1"  # this rank's GPU
    ctx.load_judge("ckpt", "cot")
    ctx._bt_scorer("ckpt")
    ctx.recipe.device, ctx.recipe.sample_dtype = "cuda:0", "bfloat16"  # explicit settings win
    ctx.load_judge("ckpt", "cot")
    assert asked == [("judge", "cpu", "auto"), ("judge", "cuda:1", "auto"), ("bt", "cuda:1"), ("judge", "cuda:0", "bfloat16")]
    args = make_args(_recording(SFTConfig), TrainConfig(), tmp_path, 1e-4, 0)  # training: TRL on the GPU, bf16
    assert (args.use_cpu, args.bf16, args.gradient_checkpointing) == (False, True, True)
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    args = make_args(_recording(SFTConfig), TrainConfig(), tmp_path, 1e-4, 0)
    assert (args.use_cpu, args.bf16, args.gradient_checkpointing) == (True, False, False)


# -- (d) loud failures ------------------------------------------------------------------------------------
def test_an_iteration_that_keeps_nothing_stops_unless_allowed(tmp_path, synthetic_data):
    from genrm_plugin.recipes.runner import train_judge
    from genrm_plugin.recipes.star import EmptyIterationError

    # the random kit model never writes a verdict: STaR keeps nothing from it
    configs = tiny_configs(tmp_path / "run", "star-sft", "toy", synthetic_data, iterations=1, data_limit=4, eval_data=None)
    with pytest.raises(EmptyIterationError) as stop:
        train_judge(*configs)
    message = str(stop.value)
    assert "iteration 1 keeps 0 training rows (at least 1 needed): 32 rationales sampled for 8 judge items" in message
    assert "0 with a parsed verdict" in message and "--allow_empty_iterations" in message and "\n" not in message
    configs[0].allow_empty_iterations = True  # the same run folder resumes with the flag
    final = train_judge(*configs)
    stats = json.loads((final.parent / "stats.json").read_text())
    assert stats[0]["train_rows"] == 0 and stats[0]["trained"] is False
    shards = json.loads((tmp_path / "run" / "manifest.json").read_text())["iterations"]["1"]["shards"]
    assert all(entry["attempt"] == 1 for entry in shards.values())  # sampled once, reused on resume


def test_too_long_judge_prompts_are_left_out_with_a_count(warm_judge, caplog):
    from genrm_plugin.data import JudgeExample
    from genrm_plugin.recipes.star import fitting_examples

    examples = [JudgeExample("What is 1+1?", "2", "3", "A", 0), JudgeExample("What is 1+1? " * 400, "2", "3", "A", 1)]
    ctx = types.SimpleNamespace(judge=JudgeConfig(template="compact", max_new_tokens=40),
                                run=types.SimpleNamespace(manifest={"iterations": {}}))
    kept = fitting_examples(ctx, 1, examples, str(warm_judge))
    assert [e.pair_index for e in kept] == [0]
    assert "1 of 2 judge prompts plus max_new_tokens=40 exceed the judge's" in caplog.text
    assert ctx.run.manifest["iterations"]["1"]["too_long"] == 1


def test_the_sampling_engine_may_change_on_resume(tmp_path, caplog):
    from genrm_plugin.recipes.training_run import TrainingRun
    from genrm_plugin.run_folder import RunFolderError

    fingerprint = {"configs": {"k": 4}}
    TrainingRun(tmp_path, fingerprint, engine={"sample_backend": "vllm"}).close()
    TrainingRun(tmp_path, fingerprint, engine={"sample_backend": "transformers"}).close()
    assert "sampling engine changed (sample_backend: 'vllm' -> 'transformers')" in caplog.text
    engines = json.loads((tmp_path / "run.json").read_text())["engines"]
    assert engines == [{"sample_backend": "vllm"}, {"sample_backend": "transformers"}]
    with pytest.raises(RunFolderError, match=r"other settings \(configs.k: 4 -> 8\)"):
        TrainingRun(tmp_path, {"configs": {"k": 8}}, engine={"sample_backend": "transformers"})
