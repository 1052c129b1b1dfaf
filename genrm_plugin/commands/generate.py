"""``genrm generate``: sample N candidate answers per prompt from a policy into a candidates file.

The policy runs through the backends (``--model PATH --backend transformers|vllm|openai``, with the
``VLLMConfig`` / ``OpenAIConfig`` flags for those engines), so the same command feeds ``genrm eval math500`` (MATH500 problems, ids
``unique_id``) and ``genrm eval arenahard`` (arena-hard questions, ids ``uid``). Output: JSON Lines
``{"<id field>": id, "candidates": [n answers], "reference"?: answer}``. The output file is appended
chunk by chunk; rerunning the command skips the ids already written.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from tqdm.auto import tqdm

HELP = "sample N candidates per prompt from a policy (MATH500 / ArenaHard candidates file)"

MATH_INSTRUCTION = (
    "Solve the following math problem step by step. Put your final answer within \\boxed{{}}.\n\n{prompt}"
)
ID_FIELDS = ("unique_id", "uid", "id")
PROMPT_FIELDS = ("problem", "prompt", "question")


@dataclass
class GenerateConfig:
    """Settings of ``genrm generate``.

    Fields:
        input: prompts: a local file or ``datasets`` name (MATH500 problems, arena-hard questions, ...).
        split: split of a ``datasets`` name.
        output: candidates JSONL to write (appended; ids already there are skipped).
        id_field: id field of the input rows (default: the first of unique_id, uid, id present).
        prompt_field: prompt field (default: the first of problem, prompt, question present).
        instruction: user message template with ``{prompt}``; ``auto`` asks for a boxed answer when
            the rows are math problems (they have ``problem`` and ``answer``), else the bare prompt.
        n: candidates per prompt.
        with_reference: also sample one more answer per prompt as the row's ``reference`` (for the
            ``reference`` Best-of-N strategy).
        limit: only the first ``limit`` prompts.
        chunk_size: prompts per backend call (a killed run loses at most one chunk).
        temperature, top_p, max_new_tokens: sampling of the policy.
        seed: sampling seed (chunk i uses seed + i).
    """

    input: str = ""
    split: str | None = "test"
    output: str = "candidates.jsonl"
    id_field: str | None = None
    prompt_field: str | None = None
    instruction: str = "auto"
    n: int = 4
    with_reference: bool = False
    limit: int | None = None
    chunk_size: int = 16
    temperature: float = 1.0
    top_p: float = 1.0
    max_new_tokens: int = 1024
    seed: int = 0

    def __post_init__(self) -> None:
        if self.n < 1 or self.chunk_size < 1:
            raise ValueError("GenerateConfig.n and chunk_size must be >= 1")
        if self.instruction != "auto" and "{prompt}" not in self.instruction:
            raise ValueError("GenerateConfig.instruction must contain '{prompt}' (or be 'auto')")


def generate_candidates(config: GenerateConfig, backend) -> Path:
    """Write the candidates file (see the module docstring); returns its path."""
    from genrm_plugin.backends.base import SamplingConfig
    from genrm_plugin.evals.inputs import EvalInputError, read_rows

    if not config.input:
        raise EvalInputError("no input prompts given (--input FILE or a datasets name)")
    rows = read_rows(config.input, config.split, what="prompts")[: config.limit]
    first = rows[0][1]
    id_field = config.id_field or next((f for f in ID_FIELDS if f in first), None)
    prompt_field = config.prompt_field or next((f for f in PROMPT_FIELDS if f in first), None)
    if id_field is None or prompt_field is None:
        raise EvalInputError(
            f"{rows[0][0]}: cannot tell the id/prompt fields (fields present: {sorted(first)}); "
            "pass --id_field and --prompt_field"
        )
    for where, row in rows:
        for name in (id_field, prompt_field):
            if not isinstance(row.get(name), str):
                raise EvalInputError(f"{where}: field {name!r} is missing or not a string")
    template = config.instruction
    if template == "auto":
        template = MATH_INSTRUCTION if "problem" in first and "answer" in first else "{prompt}"

    output = Path(config.output)
    done = _existing(output, id_field, config.n)
    todo = [row for _, row in rows if row[id_field] not in done]
    per_prompt = config.n + int(config.with_reference)
    sampling = SamplingConfig(
        temperature=config.temperature, top_p=config.top_p, max_new_tokens=config.max_new_tokens, stop=[]
    )
    chunks = [todo[s : s + config.chunk_size] for s in range(0, len(todo), config.chunk_size)]
    output.parent.mkdir(parents=True, exist_ok=True)
    for index, chunk in enumerate(tqdm(chunks, desc="generating candidates", unit="chunk", disable=not chunks)):
        prompts = [
            backend.render([{"role": "user", "content": template.replace("{prompt}", row[prompt_field])}])
            for row in chunk
        ]
        samples = backend.generate(prompts, per_prompt, sampling, seed=config.seed + index)
        lines = []
        for row, answers in zip(chunk, samples):
            record = {id_field: row[id_field], "candidates": answers[: config.n]}
            if config.with_reference:
                record["reference"] = answers[config.n]
            lines.append(json.dumps(record, ensure_ascii=False) + "\n")
        with open(output, "a", encoding="utf-8") as f:
            f.write("".join(lines))
    return output


def _existing(output: Path, id_field: str, n: int) -> set[str]:
    from genrm_plugin.evals.inputs import EvalInputError
    from genrm_plugin.run_folder import read_records

    ids = set()
    for number, row in enumerate(read_records(output), start=1):
        if not isinstance(row, dict) or id_field not in row or len(row.get("candidates") or []) != n:
            raise EvalInputError(
                f"{output}: row {number} is not a {id_field!r} row with {n} candidates; "
                "write to another --output to change n"
            )
        ids.add(row[id_field])
    return ids


def main(argv: list[str]) -> int:
    from genrm_plugin.backends.factory import BackendConfig, load_backend
    from genrm_plugin.backends.openai import OpenAIConfig
    from genrm_plugin.backends.vllm import VLLMConfig
    from genrm_plugin.config_parser import parse_configs

    config, backend_cfg, vllm_cfg, openai_cfg = parse_configs(
        (GenerateConfig, BackendConfig, VLLMConfig, OpenAIConfig), argv, "genrm generate"
    )
    path = generate_candidates(config, load_backend(backend_cfg, vllm=vllm_cfg, openai=openai_cfg))
    count = sum(1 for line in path.read_text(encoding="utf-8").splitlines() if line.strip())
    print(f"{count} candidate pools of {config.n} in {path}")
    return 0
