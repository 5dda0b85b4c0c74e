# Two entry points, both safe on a fresh machine:
#   make cluster   - set up, then start a local 3 masters + 3 replicas cluster (redis-cli -c -p 30001)
#   make test      - set up (venv + Debian redis-server/redis-tools), then run every test
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin

.PHONY: cluster stop test setup redis bench

cluster: setup
	$(BIN)/rcluster-cluster start

# No set-up just to stop: without a venv nothing can be running.
stop:
	@if [ -x $(BIN)/rcluster-cluster ]; then $(BIN)/rcluster-cluster stop; \
	 else echo "nothing to stop (no $(VENV))"; fi

test: setup redis
	$(BIN)/python -m pytest -q -p no:cacheprovider

setup: $(VENV)/.installed

# 'compat' editable mode puts the checkout itself on sys.path, so that
# twisted/plugins/rcluster_plugin.py joins Twisted's plugin path without
# shadowing the real twisted package.
$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q -e '.[test]' --config-settings editable_mode=compat
	touch $@

# The reference peers for interop tests: Debian's redis-server/redis-tools 7.0.
redis:
	@command -v redis-server >/dev/null && command -v redis-cli >/dev/null || \
	  (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq redis-server redis-tools)

bench: setup redis
	$(BIN)/python bench/throughput.py
