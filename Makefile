# make book : set up (.venv from the lock) and build the HTML book into _build/html
# make test : set up and run the tests (unit tests + every chapter at smoke scale)
# make paper: run every paper-scale sweep of book/paper.yml (resumable), export book/results/*.csv
# make lab  : JupyterLab on the repository: a book/*.md chapter opens as a notebook (jupytext), runs in
#             .venv's python3 kernel with cwd book/, saves back to the .md (make lab ARGS=--no-browser)
# make env  : set up only.  make lock : regenerate requirements.lock from requirements.in
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.nckernels-lock
JOBS ?= 2
# glibc malloc for every python started here (book build, tests, sweeps): large arrays come from the heap and are
# reused, not mmapped afresh and page-faulted at each allocation (N x N float64 from N = 2048: kernels 2.6-3x faster);
# the values of nckernels.experiments.scales.ALLOCATOR_ENV, which chapter runs outside make also get
export MALLOC_MMAP_MAX_ ?= 0
export MALLOC_TRIM_THRESHOLD_ ?= 68719476736

.PHONY: env book test lock clean bench paper lab

env:
	@want=$$(cat requirements.lock pyproject.toml | sha256sum | cut -c1-64); \
	have=$$(cat $(STAMP) 2>/dev/null); \
	if [ ! -x $(BIN)/python ] || [ "$$want" != "$$have" ]; then \
	  echo "[env] creating $(VENV) from requirements.lock"; \
	  [ -x $(BIN)/python ] || $(PYTHON) -m venv $(VENV) || exit 1; \
	  $(BIN)/python -m pip install -q -r requirements.lock || exit 1; \
	  $(BIN)/python -m pip install -q --no-deps --no-build-isolation -e . || exit 1; \
	  $(BIN)/python -m ipykernel install --sys-prefix --name python3 >/dev/null || exit 1; \
	  echo "$$want" > $(STAMP); \
	else echo "[env] $(VENV) matches requirements.lock"; fi
	@# kernels of this environment (book build, tests, sweeps) log errors only: no TCP-transport warning
	@mkdir -p $(VENV)/etc/ipython && echo 'c.IPKernelApp.log_level = "ERROR"' > $(VENV)/etc/ipython/ipython_kernel_config.py

book: env
	$(BIN)/jupyter-book build . --builder html -W -n --keep-going
	@echo "Book: $(CURDIR)/_build/html/index.html"

# JupyterLab: .md opens as a notebook by default (jupytext's "Jupytext Notebook" viewer, set in
# .venv's JupyterLab settings overrides); jupytext saves the .md only (no pairing, so no .ipynb) and
# leaves its version out of the chapter's header; the kernels of .venv come first (JUPYTER_PREFER_ENV_PATH).
ARGS ?=
LAB_ROOT ?= $(CURDIR)
LAB_SETTINGS := $(VENV)/share/jupyter/lab/settings/overrides.json
LAB_OPTS = --ServerApp.root_dir=$(LAB_ROOT) $(if $(filter 0,$(shell id -u)),--allow-root) \
  --JupytextConfiguration.notebook_metadata_filter=-jupytext.text_representation.jupytext_version,-jupytext.text_representation.format_version
lab: env
	@$(BIN)/python -c 'import json, pathlib, sys; p = pathlib.Path(sys.argv[1]); s = json.loads(p.read_text()) if p.is_file() else {}; \
	  v = s.setdefault("@jupyterlab/docmanager-extension:plugin", {}).setdefault("defaultViewers", {}); \
	  v.update(markdown="Jupytext Notebook", myst="Jupytext Notebook"); \
	  p.parent.mkdir(parents=True, exist_ok=True); p.write_text(json.dumps(s, indent=2))' $(LAB_SETTINGS)
	JUPYTER_PREFER_ENV_PATH=1 $(BIN)/jupyter-lab $(LAB_OPTS) $(ARGS)

test: env
	MPLBACKEND=Agg $(BIN)/python -m pytest -n $(JOBS) --dist loadfile -q

# make bench BENCH_ARGS=--quick for a smoke run of every benchmark; each prints baseline, ours, ratio.
BENCH_ARGS ?=
bench: env
	@for b in benchmarks/bench_*.py; do echo "== $$b"; $(BIN)/python $$b $(BENCH_ARGS) || exit 1; done

# make paper: every result set of book/paper.yml (chapters 5, 6, 9-13 at paper scale), resumable, one progress
# line over all runs, then tidy CSVs + provenance in book/results/ (tracked) and the total wall time.
# PAPER_WORKERS runs at a time across all sweeps, each with cores / workers threads (2 x 1 thread beat 1 x 2 threads
# by 1.46x on a small grid on 2 cores); PAPER_ARGS e.g. "--only 06_balanced", "--export-only" or "--restore"
# (seed the work folder from the committed sets first, so a fresh clone runs only the runs it lacks).
# DEVICE=cuda runs the chapters that have a device parameter (5, 6, 9-13) on that device; any other on the CPU.
PAPER_WORKERS ?= 2
PAPER_ARGS ?=
DEVICE ?=
paper: env
	$(BIN)/python -m nckernels paper --manifest book/paper.yml --workers $(PAPER_WORKERS) $(if $(DEVICE),--device $(DEVICE)) $(PAPER_ARGS)

lock:
	$(PYTHON) -m venv /tmp/nckernels-lock && /tmp/nckernels-lock/bin/pip install -q -r requirements.in && \
	{ head -n 2 requirements.lock; /tmp/nckernels-lock/bin/pip freeze | sed 's/^torch==\(.*\)+cpu/torch==\1/'; } > requirements.lock.new && \
	mv requirements.lock.new requirements.lock

clean:
	rm -rf _build .jupyter_cache
