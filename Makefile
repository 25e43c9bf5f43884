# shoal: `make test` builds its own virtualenv and runs lint + the whole suite;
# `make run` runs the demo (see README).
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed-stamp
PEER_VENV ?= .venv-peer
PEER_STAMP := $(PEER_VENV)/.installed-stamp

.PHONY: test lint unit run codec-demo bench peer clean chromium sftp-client

$(STAMP): setup.py pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e '.[test]'
	touch $(STAMP)

lint: $(STAMP)
	$(VENV)/bin/ruff check src tests bench
	$(VENV)/bin/mypy
	$(VENV)/bin/lint-imports

# The reference peer (Tahoe-LAFS 1.20.0) for interop tests, in its own virtualenv.
$(PEER_STAMP):
	test -x $(PEER_VENV)/bin/python || $(PYTHON) -m venv $(PEER_VENV)
	$(PEER_VENV)/bin/python -m pip install -q --upgrade pip
	$(PEER_VENV)/bin/python -m pip install -q tahoe-lafs==1.20.0
	touch $(PEER_STAMP)

peer: $(PEER_STAMP)

unit: $(STAMP) $(PEER_STAMP)
	SHOAL_REQUIRE_PEER=1 $(PY) -b -m pytest -q

# Debian's chromium renders the node's web pages in tests/integration/test_pages.py.
chromium:
	@test -x /usr/bin/chromium || { \
	  if [ "$$(id -u)" = 0 ]; then SUDO=; else SUDO=sudo; fi; \
	  $$SUDO apt-get install -y chromium || { $$SUDO apt-get update && $$SUDO apt-get install -y chromium; }; }

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
