# The README's commands. Every target installs what it needs first (one consistent pip resolve into .venv).
VENV ?= .venv
PY := $(VENV)/bin/python
EMOSTREAM := $(VENV)/bin/emostream

.PHONY: install system-deps run test lint format bench clean
APT := $(if $(filter 0,$(shell id -u)),apt-get,sudo -n apt-get)

install: $(VENV)/.installed

$(VENV)/.installed: pyproject.toml
	test -x $(PY) || python3 -m venv $(VENV)
	$(PY) -m pip install --quiet --disable-pip-version-check -e '.[dev]'
	$(PY) -m pip check
	touch $@

# System packages the tests need: Debian's stunnel4 (a real TLS terminator in front of the test broker) and chromium
# (the dashboard's browser test; Playwright drives it, no browser is downloaded).
system-deps:
	@{ command -v stunnel && command -v chromium; } >/dev/null \
		|| { $(APT) update -qq && $(APT) install -y -qq stunnel4 chromium >/dev/null; } \
		|| { echo "the tests need Debian's stunnel4 and chromium (apt-get install stunnel4 chromium)" >&2; exit 1; }

# The main job on the embedded broker: trains a model first if the registry has none, starts broker and worker, sends
# docs/sample_events.jsonl and shows labelled events, dead letters and aggregates.
run: install
	$(EMOSTREAM) demo

test: install system-deps
	$(VENV)/bin/ruff check .
	$(PY) -m pytest

lint: install
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

format: install
	$(VENV)/bin/ruff format .
	$(VENV)/bin/ruff check --fix .

bench: install
	$(PY) bench/inference.py

clean:
	rm -rf $(VENV) runs .pytest_cache .ruff_cache
