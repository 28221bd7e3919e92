# The README's commands. Every target installs what it needs first (one consistent pip resolve into .venv).
VENV ?= .venv
PY := $(VENV)/bin/python
EMOSTREAM := $(VENV)/bin/emostream

.PHONY: install run test lint format bench clean

install: $(VENV)/.installed

$(VENV)/.installed: pyproject.toml
	test -x $(PY) || python3 -m venv $(VENV)
	$(PY) -m pip install --quiet --disable-pip-version-check -e '.[dev]'
	$(PY) -m pip check
	touch $@

# The main job: make sure a model is served (train the quick recipe first if the registry has none), then show it
# working on sample texts.
run: install
	$(EMOSTREAM) models current >/dev/null 2>&1 || { \
		echo "No model in the registry yet: training one with the quick recipe first (about 5 minutes on 2 CPU cores)."; \
		$(EMOSTREAM) train --recipe quick --register; }
	$(EMOSTREAM) models current
	$(EMOSTREAM) predict < docs/sample_texts.txt

test: install
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
