# shoal: `make test` builds its own virtualenv and runs lint + the whole suite;
# `make run` runs the demo (see README).
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed-stamp
# Every dependency pinned with its hashes (`make lock` refreshes it; setup.py keeps the ranges).
LOCK := requirements/lock.txt
PEER_LOCK := requirements/peer-lock.txt
LOCK_FLAGS ?=
PEER_VENV ?= .venv-peer
PEER_STAMP := $(PEER_VENV)/.installed-stamp

.PHONY: test lint unit run codec-demo bench peer clean chromium lock install-check config-doc sftp-client

# The pinned set, then shoal itself without resolving anything; `pip check` fails when
# setup.py names a dependency the lock lacks (run `make lock`).
$(STAMP): $(LOCK) setup.py pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q --require-hashes -r $(LOCK)
	$(PY) -m pip install -q --no-deps -e .
	$(PY) -m pip check
	touch $(STAMP)

# Re-pin from setup.py (install_requires + the test extra) with pip-tools in a throwaway
# virtualenv, and the interop peer (requirements/peer.in); pins stay where they are unless
# LOCK_FLAGS=--upgrade (or --upgrade-package P).
lock:
	set -e; tmp=$$(mktemp -d /tmp/shoal-lock.XXXXXX); trap 'rm -rf "$$tmp"' EXIT; \
	$(PYTHON) -m venv "$$tmp/venv"; \
	"$$tmp/venv/bin/pip" install -q 'pip-tools>=7.4,<8'; \
	compile="$$tmp/venv/bin/pip-compile -q --generate-hashes --strip-extras --no-emit-index-url --no-emit-find-links"; \
	CUSTOM_COMPILE_COMMAND="make lock" $$compile --extra test $(LOCK_FLAGS) -o $(LOCK) setup.py; \
	CUSTOM_COMPILE_COMMAND="make lock" $$compile $(LOCK_FLAGS) -o $(PEER_LOCK) requirements/peer.in

# docs/configuration.md's tables, rendered from the registry shoal.node.config.KEYS.
config-doc: $(STAMP)
	$(PY) -m shoal.node.config_keys --write docs/configuration.md

# A wheel built from this tree, installed into a fresh virtualenv the way a user installs
# it (dependencies resolved from setup.py's ranges), must start (`shoal --version`) and
# import every module it ships (from outside the tree, so nothing comes from src/).
install-check: $(STAMP)
	rm -rf build/install-check
	$(PY) -m pip wheel -q --no-deps -w build/install-check/dist .
	$(PYTHON) -m venv build/install-check/venv
	build/install-check/venv/bin/pip install -q build/install-check/dist/shoal-*.whl
	build/install-check/venv/bin/shoal --version
	cd build/install-check && venv/bin/python -c 'import pkgutil, shoal; \
	  names = [m.name for m in pkgutil.walk_packages(shoal.__path__, "shoal.")]; \
	  [__import__(n) for n in names]; print(f"imported {len(names)} modules from the wheel")'

lint: $(STAMP)
	$(VENV)/bin/ruff check src tests bench
	$(VENV)/bin/mypy
	$(VENV)/bin/lint-imports

# The reference peer (Tahoe-LAFS 1.20.0) for interop tests, in its own virtualenv.
$(PEER_STAMP): $(PEER_LOCK)
	test -x $(PEER_VENV)/bin/python || $(PYTHON) -m venv $(PEER_VENV)
	$(PEER_VENV)/bin/python -m pip install -q --upgrade pip
	$(PEER_VENV)/bin/python -m pip install -q --require-hashes -r $(PEER_LOCK)
	touch $(PEER_STAMP)

peer: $(PEER_STAMP)

# Parallel by default: one pytest-xdist worker per core (at most 8, the port blocks of
# shoal.testing.ports); tests/scheduling.py keeps each module (the netgrid package) on one
# worker, in order, and starts the slowest first. PYTEST_PARALLEL= runs serially.
PYTEST_PARALLEL ?= -n auto --maxprocesses=8

unit: $(STAMP) $(PEER_STAMP)
	SHOAL_REQUIRE_PEER=1 $(PY) -b -m pytest -q $(PYTEST_PARALLEL)

# Debian's chromium renders the node's web pages in tests/integration/test_pages.py, and
# chromium-driver lets tests/integration/test_browser.py work in them over WebDriver.
chromium:
	@{ test -x /usr/bin/chromium && test -x /usr/bin/chromedriver; } || { \
	  if [ "$$(id -u)" = 0 ]; then SUDO=; else SUDO=sudo; fi; \
	  $$SUDO apt-get install -y chromium chromium-driver || \
	  { $$SUDO apt-get update && $$SUDO apt-get install -y chromium chromium-driver; }; }

# Debian's openssh-client (sftp) drives the SFTP frontend in tests/integration/test_sftp.py.
sftp-client:
	@test -x /usr/bin/sftp || { \
	  if [ "$$(id -u)" = 0 ]; then SUDO=; else SUDO=sudo; fi; \
	  $$SUDO apt-get install -y openssh-client || { $$SUDO apt-get update && $$SUDO apt-get install -y openssh-client; }; }

test: lint chromium sftp-client unit

# A real local grid (introducer, 5 storage nodes, a client) until Ctrl-C.
run: $(STAMP)
	$(PY) misc/grid.py

# The grid-free round trip: encode 3-of-10, drop 7 shares, decode.
codec-demo: $(STAMP)
	$(PY) misc/demo.py

bench: $(STAMP)
	$(PY) bench/codec.py
	$(PY) bench/storage.py

clean:
	rm -rf $(VENV) $(PEER_VENV) build src/*.egg-info .pytest_cache .hypothesis .mypy_cache .ruff_cache
