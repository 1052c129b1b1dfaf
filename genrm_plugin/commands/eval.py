"""``genrm eval preference|math500|arenahard``: run an evaluation into a resumable run folder.

``preference --judge_kind cloud|synthetic-critique-rm --critique_model final/`` scores with a critique
reward model: ``--k`` critiques per response averaged (at ``--temperature``; default one greedy
critique), the backend flags choosing where its critic runs. Each evaluation takes its own ``*EvalConfig`` flags plus the judge's ``BackendConfig``,
``VLLMConfig`` (``--backend vllm``), ``OpenAIConfig`` (``--backend openai``) and ``JudgeConfig`` flags (``--config FILE.yaml`` fills the same
fields); ``arenahard`` also takes the grading judge's ``GraderConfig`` (``--grader_*``). Rerunning
the same command resumes the run.
"""

from __future__ import annotations

from dataclasses import asdict

from genrm_plugin.commands._judge_stack import build_judge, parse_with_judge_stack

HELP = "evaluate a judge: preference accuracy, MATH500 Best-of-N, ArenaHard v0.1 Best-of-N"
EVALS = ("preference", "math500", "arenahard")
SUBCOMMANDS = EVALS  # `genrm eval <name>`: errors read `genrm eval <name>: error: ...`
USAGE = (
    "usage: genrm eval {preference,math500,arenahard} [flags] [--config FILE.yaml]\n\n"
    "  preference  accuracy of a judge on preference pairs (maj@K, consistency, RewardBench sections)\n"
    "  math500     MATH500 Best-of-N curves: GenRM selection vs majority vote, random, oracle\n"
    "  arenahard   ArenaHard v0.1 win rate of the GenRM's Best-of-N choice vs gpt-4-0314\n\n"
    "`genrm eval <name> --help` lists the flags."
)


def main(argv: list[str]) -> int:
    from genrm_plugin.config_parser import ConfigError

    if not argv or argv[0] in ("-h", "--help"):
        print(USAGE)
        return 0
    name, rest = argv[0], argv[1:]
    if name not in EVALS:
        raise ConfigError(f"unknown evaluation {name!r}; choose one of {', '.join(EVALS)}", "genrm eval")
    summary_path = {"preference": _preference, "math500": _math500, "arenahard": _arenahard}[name](rest)
    print(summary_path.with_name("table.md").read_text())
    print(f"run folder: {summary_path.parent}")
    return 0


def _preference(argv: list[str]):
    from genrm_plugin.config_parser import ConfigError
    from genrm_plugin.evals.preference import CRITIQUE_KINDS, PreferenceEvalConfig, evaluate_preferences

    cfg, backend_cfgs, judge_cfg = parse_with_judge_stack((PreferenceEvalConfig,), argv, "genrm eval preference")
    if cfg.judge_kind == "bt":
        if not cfg.bt_model:
            raise ConfigError("judge_kind=bt needs --bt_model PATH (a sequence-classification reward model)")
        from genrm_plugin.bt_scorer import BTScorer

        scorer = BTScorer.from_pretrained(cfg.bt_model, device=backend_cfgs[0].device, batch_size=backend_cfgs[0].batch_size)
        evaluate_preferences(cfg, scorer=scorer, judge_info={"bt_model": cfg.bt_model})
    elif cfg.judge_kind in CRITIQUE_KINDS:
        scorer, info = _critique_scorer(cfg, backend_cfgs, judge_cfg)
        evaluate_preferences(cfg, scorer=scorer, judge_info=info)
    else:
        judge, info = build_judge(backend_cfgs, judge_cfg)
        evaluate_preferences(cfg, judge=judge, judge_info=info)
    return _summary_path(cfg.output_dir)


def _critique_scorer(cfg, backend_cfgs, judge_cfg):
    """A :class:`~genrm_plugin.critique_scorer.CritiqueScorer` from ``--critique_model`` (its card), the
    judge flags (``--k`` critiques at ``--temperature``...) and the backend flags (where the critic runs)."""
    from genrm_plugin.config_parser import ConfigError, set_fields
    from genrm_plugin.critique_scorer import CritiqueConfig, CritiqueScorer

    if not cfg.critique_model:
        raise ConfigError(f"judge_kind={cfg.judge_kind} needs --critique_model PATH (a genrm train --recipe "
                          f"{cfg.judge_kind} final/ folder)")
    k = judge_cfg.k if "k" in (set_fields(judge_cfg) or ()) else 1  # one greedy critique unless --k is given
    if k > 1 and judge_cfg.temperature == 0:
        raise ConfigError(f"--k {k} critiques per response need --temperature > 0")
    critique = CritiqueConfig(k=k, temperature=judge_cfg.temperature if k > 1 else 0.0, top_p=judge_cfg.top_p,
                              max_new_tokens=judge_cfg.max_new_tokens, seed=judge_cfg.seed)
    backend, vllm, openai = backend_cfgs
    scorer = CritiqueScorer.from_pretrained(cfg.critique_model, critic=cfg.critic, config=critique, device=backend.device,
                                            backend=backend.backend, vllm=vllm, openai=openai,
                                            batch_size=backend.batch_size, dtype=backend.dtype)
    return scorer, {"critique_model": cfg.critique_model, "critic": cfg.critic, "critique": asdict(critique)}


def _math500(argv: list[str]):
    from genrm_plugin.evals.math500 import Math500EvalConfig, evaluate_math500

    cfg, backend_cfgs, judge_cfg = parse_with_judge_stack((Math500EvalConfig,), argv, "genrm eval math500")
    judge, info = build_judge(backend_cfgs, judge_cfg) if cfg.strategies else (None, None)
    evaluate_math500(cfg, judge, judge_info=info)
    return _summary_path(cfg.output_dir)


def _arenahard(argv: list[str]):
    from genrm_plugin.evals.arenahard import ArenaHardEvalConfig, evaluate_arenahard
    from genrm_plugin.evals.arenahard_grader import GraderConfig

    cfg, grader_cfg, backend_cfgs, judge_cfg = parse_with_judge_stack((ArenaHardEvalConfig, GraderConfig), argv, "genrm eval arenahard")
    grader = grader_cfg.grader(grader_cfg.load_backend())
    judge, info = build_judge(backend_cfgs, judge_cfg) if cfg.strategies else (None, None)
    evaluate_arenahard(cfg, judge, grader, judge_info=info, grader_info=asdict(grader_cfg))
    return _summary_path(cfg.output_dir)


def _summary_path(output_dir: str):
    from pathlib import Path

    return Path(output_dir) / "summary.json"
