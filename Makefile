# s2kit — the commands a user needs. `make test` installs into .venv first.
PYTHON  ?= python3
VENV    ?= .venv
BIN     := $(VENV)/bin
S2KIT   := $(BIN)/s2kit
CONFIG  ?= examples/s2kit.toml
PYTEST_ARGS ?=

.PHONY: help install lint test test-fast test-infra bench batch container container-check clean demo docs docs-serve transcripts

help:
	@echo "make install    create $(VENV) and install s2kit with its test/dev extras"
	@echo "make test       lint (ruff, mypy) + the whole pytest suite (infrastructure tests skip)"
	@echo "make test-infra as root: install Slurm, Apptainer, makeself, shellcheck, GDAL, chromium; run their tests"
	@echo "make bench      benchmarks (numbers and ratios, no pass/fail)"
	@echo "make batch      plan + submit the batch of CONFIG=$(CONFIG)"
	@echo "make demo       the whole lab path offline in runs/demo/ (Sen2Cor TEST DOUBLE, not Sen2Cor)"
	@echo "make docs       build the documentation site into site/ (mkdocs build --strict)"
	@echo "make transcripts  re-run the commands shown in docs/ and rewrite their output"
	@echo "make container  build the Sen2Cor Apptainer image (ESACCI=zip required; containers/README.md)"

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --upgrade pip >/dev/null

$(VENV)/.installed: pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install -e '.[dev]'
	touch $@

install: $(VENV)/.installed

lint: install
	$(BIN)/ruff check s2kit tests benchmarks
	$(BIN)/ruff format --check s2kit tests benchmarks
	$(BIN)/mypy s2kit

test: lint
	$(BIN)/pytest $(PYTEST_ARGS)

test-fast: install
	$(BIN)/pytest -q -m "not slurm and not apptainer" $(PYTEST_ARGS)

# The tests of real infrastructure: `make test` skips them (and names them at the end). This
# installs what .ci/run installs (tests/infra/install.sh; root: apt-get, a debootstrapped
# Apptainer sandbox, a single-node Slurm), then runs them with S2KIT_CI=1 (a skip is a failure).
INFRA_TESTS ?= tests/test_image_def.py tests/test_image_build.py tests/test_slurm.py tests/test_slurm_limits.py tests/test_plan.py \
               tests/test_dem.py tests/test_report_browser.py
test-infra: install
	@[ "$$(id -u)" = 0 ] || { echo "make test-infra: error: expected root, found uid $$(id -u) (it apt-installs packages, sets up an Apptainer sandbox and starts Slurm); run: sudo make test-infra" >&2; exit 1; }
	eval "$$(bash tests/infra/install.sh)" \
	  && trap 'bash tests/infra/slurm-single-node.sh down >/dev/null 2>&1 || true' EXIT \
	  && S2KIT_CI=1 $(BIN)/pytest -ra $(INFRA_TESTS) $(PYTEST_ARGS)

# one table (measure, s2kit, reference, ratio, target, met): whole processes, A/B alternating,
# 5 pairs; writes benchmarks/results.{json,md} (docs/performance.md includes the .md).
# BENCH_ARGS="--quick" for a ~1-minute smoke run, "--only dem,report" for a subset.
BENCH_ARGS ?=
bench: install
	$(BIN)/python benchmarks/run.py $(BENCH_ARGS)

batch: install
	$(S2KIT) plan --config $(CONFIG)
	$(S2KIT) submit --config $(CONFIG)

# make container ESACCI=/data/ESACCI-LC-L4-ALL-FOR-SEN2COR.zip [SEN2COR=2.9|2.10|2.11|2.12] [IMAGE=x.sif]
#     [INSTALLER=Sen2Cor-02.09.00-Linux64.run|URL] [INSTALLER_SHA256=hex] [MIRROR=debian-mirror-url]
#     [CONTAINER_ARGS="--fakeroot --force ..."]   (see containers/README.md)
SEN2COR          ?= 2.9
SEN2COR_VERSION  ?= $(SEN2COR)
IMAGE            ?= containers/sen2cor-$(SEN2COR_VERSION).sif
ESACCI           ?=
INSTALLER        ?=
INSTALLER_SHA256 ?=
MIRROR           ?=
CONTAINER_ARGS   ?=

# Everything `make container` needs, checked before anything else: each missing piece is one line
# naming what to do, all at once (not one error per attempt).
APPTAINER_HELP := https://apptainer.org/docs/admin/main/installation.html
container-check:
	@ok=1; \
	if ! command -v $(firstword $(or $(S2KIT_APPTAINER),apptainer)) >/dev/null 2>&1; then ok=0; \
	  echo "make container: error: expected the apptainer command on PATH, found none: install Apptainer >= 1.2 ($(APPTAINER_HELP); containers/README.md), or build on a machine that has it; then run: make container ESACCI=/path/ESACCI-LC-L4-ALL-FOR-SEN2COR.zip" >&2; fi; \
	if [ -z "$(ESACCI)" ]; then ok=0; \
	  echo "make container: error: expected ESACCI=FILE_OR_URL, found none: download ESACCI-LC-L4-ALL-FOR-SEN2COR.zip (6 GB, CCI Land Cover; containers/README.md), then run: make container ESACCI=/path/ESACCI-LC-L4-ALL-FOR-SEN2COR.zip" >&2; fi; \
	[ $$ok = 1 ]

container: container-check install
	$(S2KIT) container build --def containers/sen2cor.def --out "$(IMAGE)" --sen2cor-version $(SEN2COR_VERSION) \
	  $(if $(ESACCI),--esacci "$(ESACCI)") $(if $(INSTALLER),--installer "$(INSTALLER)") \
	  $(if $(INSTALLER_SHA256),--installer-sha256 $(INSTALLER_SHA256)) $(if $(MIRROR),--mirror "$(MIRROR)") \
	  $(CONTAINER_ARGS)

# DEMO — Sen2Cor test double, not Sen2Cor: fetch (loopback fake bucket), dem prepare, plan,
# submit (local), status, validate, report, stac; prints the path of the HTML report.
demo: install
	$(BIN)/python tests/demo/run_demo.py

# the docs extra (mkdocs, mkdocs-material) is installed on first use
$(VENV)/.docs-installed: pyproject.toml | $(VENV)/.installed
	$(BIN)/python -m pip install -e '.[dev,docs]'
	touch $@

docs: $(VENV)/.docs-installed
	$(BIN)/mkdocs build --strict

docs-serve: $(VENV)/.docs-installed
	$(BIN)/mkdocs serve

transcripts: install
	$(BIN)/python scripts/docs/transcripts.py

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache build *.egg-info site
