"""``genrm eval preference|math500|arenahard``: run an evaluation into a resumable run folder.

Each evaluation takes its own ``*EvalConfig`` flags plus the judge's ``BackendConfig``,
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
    from genrm_plugin.evals.preference import PreferenceEvalConfig, evaluate_preferences

    cfg, backend_cfgs, judge_cfg = parse_with_judge_stack((PreferenceEvalConfig,), argv, "genrm eval preference")
    if cfg.judge_kind == "bt":
        if not cfg.bt_model:
            raise ConfigError("judge_kind=bt needs --bt_model PATH (a sequence-classification reward model)")
        from genrm_plugin.bt_scorer import BTScorer

        scorer = BTScorer.from_pretrained(cfg.bt_model, device=backend_cfgs[0].device, batch_size=backend_cfgs[0].batch_size)
        evaluate_preferences(cfg, scorer=scorer, judge_info={"bt_model": cfg.bt_model})
    else:
        judge, info = build_judge(backend_cfgs, judge_cfg)
        evaluate_preferences(cfg, judge=judge, judge_info=info)
    return _summary_path(cfg.output_dir)


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
