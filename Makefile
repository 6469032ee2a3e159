# The README's two commands: `make demo` and `make test`.
# `make demo DEMO_FLAGS=--no-background-training` opens the studio without training the other families.
# Both build .venv on first use; torch is pinned to the CPU wheel on this machine
# and installed first so that no other torch build is pulled in.
PY := .venv/bin/python
PIP := .venv/bin/pip
STAMP := .venv/.glassformer-installed

.PHONY: demo test setup clean

setup: $(STAMP)

$(STAMP): pyproject.toml
	test -x $(PY) || python3 -m venv .venv
	$(PIP) install -q --upgrade pip
	$(PIP) install -q torch==2.13.0
	$(PIP) install -q -e '.[test]'
	command -v chromium >/dev/null || { [ "$$(id -u)" = 0 ] && apt-get update -q && apt-get install -y -q chromium; } \
		|| echo "warning: chromium not installed; browser tests will skip"
	touch $(STAMP)

test: $(STAMP)
	.venv/bin/ruff check src tests benchmarks docs
	$(PY) -m pytest -q

demo: $(STAMP)
	.venv/bin/glassformer demo $(DEMO_FLAGS)

clean:
	rm -rf .venv build src/*.egg-info
