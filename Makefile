# make book : set up (.venv from the lock) and build the HTML book into _build/html
# make test : set up and run the tests (unit tests + every chapter at smoke scale)
# make paper: run every paper-scale sweep the book's figures read into results/ (resumable)
# make env  : set up only.  make lock : regenerate requirements.lock from requirements.in
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.nckernels-lock
JOBS ?= 2

.PHONY: env book test lock clean bench paper

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

book: env
	$(BIN)/jupyter-book build . --builder html -W -n --keep-going
	@echo "Book: $(CURDIR)/_build/html/index.html"

test: env
	MPLBACKEND=Agg $(BIN)/python -m pytest -n $(JOBS) --dist loadfile -q

# make bench BENCH_ARGS=--quick for a smoke run of every benchmark; each prints baseline, ours, ratio.
BENCH_ARGS ?=
bench: env
	@for b in benchmarks/bench_*.py; do echo "== $$b"; $(BIN)/python $$b $(BENCH_ARGS) || exit 1; done

PAPER_WORKERS ?= 1
paper: env
	@status=0; for grid in 06_balanced 06_imbalanced; do \
	  $(BIN)/python -m nckernels sweep book/06_trained_networks.md --grid book/grids/$$grid.yml \
	    --out results/$$grid --workers $(PAPER_WORKERS) || status=1; \
	done; exit $$status

lock:
	$(PYTHON) -m venv /tmp/nckernels-lock && /tmp/nckernels-lock/bin/pip install -q -r requirements.in && \
	{ head -n 2 requirements.lock; /tmp/nckernels-lock/bin/pip freeze | sed 's/^torch==\(.*\)+cpu/torch==\1/'; } > requirements.lock.new && \
	mv requirements.lock.new requirements.lock

clean:
	rm -rf _build .jupyter_cache
