# edge-agent: the README's two commands are `make demo` and `make test`.
PYTHON ?= python3
VENV   ?= .venv
ASSETS ?= ../shared/assets
DEMO   ?= .demo
BIN    := $(VENV)/bin
PIP_FLAGS ?= --quiet --disable-pip-version-check

.PHONY: demo test lint typecheck-tests install system-deps aarch64-check clean

# One .venv, two stamps: `make demo` installs only what the agent needs to run; `make test` adds
# the test extras (pytest, jsonschema, motmetrics, psycopg, ...) on top. Either works from a clean
# clone and in either order.
$(BIN)/python:
	$(PYTHON) -m venv $(VENV)

$(BIN)/.installed-runtime: pyproject.toml | $(BIN)/python
	$(BIN)/pip install $(PIP_FLAGS) -e .
	touch $@

$(BIN)/.installed-test: pyproject.toml | $(BIN)/python
	$(BIN)/pip install $(PIP_FLAGS) -e ".[test]"
	touch $@ $(BIN)/.installed-runtime

install: $(BIN)/.installed-test

# The main job: obtain the default model and the sample clip (local folder first, else their
# public URLs; SHA-256 checked either way), replay the clip through the real pipeline into the
# local outbox, then verify every envelope it produced.
demo: $(BIN)/.installed-runtime
	$(BIN)/edge-agent models fetch yolox_nano_ti_lite_416_int8 --from $(ASSETS) --state $(DEMO)/state
	$(BIN)/edge-agent samples fetch one-by-one-person-detection --from $(ASSETS) --dest $(DEMO)/samples
	$(BIN)/edge-agent replay $(DEMO)/samples/one-by-one-person-detection.mp4 --config docs/demo.toml \
		--state $(DEMO)/state \
		--events-out $(DEMO)/events.jsonl
	$(BIN)/edge-agent verify $(DEMO)/events.jsonl --registry $(DEMO)/state/device.pub.json

system-deps:
	sh hw/install-apt.sh hw/apt-test.txt

# Static checks, part of `make test`: ruff (lint, line length 120) and mypy (strict on agent/,
# lenient on tests/; settings in pyproject.toml). Either one failing fails the tests.
lint: $(BIN)/.installed-test
	$(BIN)/ruff check agent tests
	$(BIN)/mypy

# The tests' own type check (lenient). Not yet part of lint: it needs the tests to be packages
# and a clean-up of the errors it reports; then add it to lint.
typecheck-tests: $(BIN)/.installed-test
	$(BIN)/mypy tests

# The tests: install what the suite needs (Debian's mosquitto and postgresql included), run it all.
test: $(BIN)/.installed-test system-deps lint
	EDGE_AGENT_ASSETS=$(abspath $(ASSETS)) $(BIN)/python -m pytest $(PYTEST_ARGS)

# Proof on aarch64 (as root; slow, so .ci/run calls it after the tests): arm64 Debian roots
# (bookworm/Python 3.11, trixie/Python 3.13) under qemu-user 10, built once and cached in
# /var/cache/edge-agent-ci; the agent installed as on a device, its results compared with x86.
SUITES ?= bookworm trixie
aarch64-check: $(BIN)/.installed-runtime
	sh hw/install-apt.sh hw/apt-aarch64.txt
	ASSETS=$(abspath $(ASSETS)) X86_PY=$(abspath $(BIN))/python bash hw/aarch64-check.sh $(SUITES)

clean:
	rm -rf $(VENV) $(DEMO) .pytest_cache
