# edge-agent: the README's two commands are `make demo` and `make test`.
PYTHON ?= python3
VENV   ?= .venv
ASSETS ?= ../shared/assets
DEMO   ?= .demo
BIN    := $(VENV)/bin
PIP_FLAGS ?= --quiet --disable-pip-version-check

.PHONY: demo test install system-deps aarch64-check clean

$(BIN)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install $(PIP_FLAGS) -e ".[test]"
	touch $@

install: $(BIN)/.installed

# The main job: obtain the default model and the sample clip (local folder first, else their
# public URLs; SHA-256 checked either way), replay the clip through the real pipeline into the
# local outbox, then verify every envelope it produced.
demo: $(BIN)/.installed
	$(BIN)/edge-agent models fetch ssd_mobilenet_v1_coco_quant --from $(ASSETS) --state $(DEMO)/state
	$(BIN)/edge-agent samples fetch one-by-one-person-detection --from $(ASSETS) --dest $(DEMO)/samples
	$(BIN)/edge-agent replay $(DEMO)/samples/one-by-one-person-detection.mp4 --config docs/demo.toml \
		--state $(DEMO)/state \
		--events-out $(DEMO)/events.jsonl
	$(BIN)/edge-agent verify $(DEMO)/events.jsonl --registry $(DEMO)/state/device.pub.json

system-deps:
	sh hw/install-apt.sh hw/apt-test.txt

# The tests: install what the suite needs (Debian's mosquitto and postgresql included), run it all.
test: $(BIN)/.installed system-deps
	EDGE_AGENT_ASSETS=$(abspath $(ASSETS)) $(BIN)/python -m pytest $(PYTEST_ARGS)

# Proof on aarch64 (as root; slow, so .ci/run calls it after the tests): arm64 Debian roots
# (bookworm/Python 3.11, trixie/Python 3.13) under qemu-user 10, built once and cached in
# /var/cache/edge-agent-ci; the agent installed as on a device, its results compared with x86.
SUITES ?= bookworm trixie
aarch64-check: $(BIN)/.installed
	sh hw/install-apt.sh hw/apt-aarch64.txt
	ASSETS=$(abspath $(ASSETS)) X86_PY=$(abspath $(BIN))/python bash hw/aarch64-check.sh $(SUITES)

clean:
	rm -rf $(VENV) $(DEMO) .pytest_cache
