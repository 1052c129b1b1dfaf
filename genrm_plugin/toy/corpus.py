"""The "pretraining" corpus of the toy world's base model: what it knows before any judge training.

A pretrained LLM has seen people solve problems (sometimes sloppily) and check other people's
answers, but not this package's judging convention. The corpus stands for that:

* ``solve`` rows: the policy prompt (a chat turn with the question) and the worked answer, the
  column-wise trace (:func:`~genrm_plugin.toy.world.solution`), flawed with probability
  ``error_rate`` (so the base policy is right often, not always);
* ``check`` rows: the judge's CoT prompt with two candidates' final answers and a critique that
  recomputes the sum (also flawed with probability ``error_rate``), compares each candidate's
  answer with the result digit by digit and marks it ``Y``/``N`` -- but never writes the
  ``[[A]]``/``[[B]]`` verdict: that is what judge training teaches.

Every split of the world appears (2-digit sums, 2-digit differences, 3-digit sums, one third
each), so the base model knows the skills the judges' preference data never shows (differences,
longer sums), as a pretrained model would.
"""

from __future__ import annotations

import random
from typing import Any

from genrm_plugin.prompts import judge_messages, render_messages
from genrm_plugin.toy.world import (
    MISTAKES, SPLITS, Problem, critique, noisy_solution, prompt_config, sample_problem, solution,
)


def policy_prompt(tokenizer: Any, question: str) -> str:
    """The prompt the world's policy answers: the question as one user turn (chat template)."""
    return render_messages(tokenizer, [{"role": "user", "content": question}])


def check_prompt(tokenizer: Any, question: str, answer_a: str, answer_b: str, template: str = "tiny") -> str:
    """The judge's CoT prompt, exactly as :class:`~genrm_plugin.judge.GenerativeJudge` renders it
    with the world's ``answer_pattern`` (the candidates' final answers)."""
    return render_messages(tokenizer, judge_messages(question, answer_a, answer_b, "cot", config=prompt_config(template)))


def candidate_pair(problem: Problem, rng: random.Random) -> tuple[str, str]:
    """Two candidate answers in random order: one correct and one flawed (sometimes both flawed)."""
    right = solution(problem) if rng.random() < 0.85 else solution(problem, rng.choice(MISTAKES), rng)
    wrong = solution(problem, rng.choice(MISTAKES), rng)
    return (right, wrong) if rng.random() < 0.5 else (wrong, right)


def base_corpus(
    tokenizer: Any, n_rows: int, seed: int = 0, error_rate: float = 0.2, check_share: float = 0.5, template: str = "tiny",
) -> list[dict[str, str]]:
    """``n_rows`` prompt/completion rows: ``check`` rows (share ``check_share``) and ``solve`` rows
    (the rest), every split of the world."""
    if not 0 <= error_rate < 1:
        raise ValueError(f"error_rate must be in [0, 1), got {error_rate}")
    if not 0 <= check_share <= 1:
        raise ValueError(f"check_share must be in [0, 1], got {check_share}")
    rng = random.Random(f"corpus|{seed}")
    rows = []
    for _ in range(n_rows):
        problem = sample_problem(rng, rng.choice(sorted(SPLITS)))
        if rng.random() < check_share:
            worked, _ = noisy_solution(problem, rng, error_rate)
            a, b = candidate_pair(problem, rng)
            rows.append({"prompt": check_prompt(tokenizer, problem.question, a, b, template),
                         "completion": critique(problem, a, b, worked)})
        else:
            rows.append({"prompt": policy_prompt(tokenizer, problem.question),
                         "completion": noisy_solution(problem, rng, error_rate)[0]})
    return rows
