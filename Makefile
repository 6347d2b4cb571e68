# `make run`: set up everything and run the main job (embedded data, ten-loss quick sweep, the
# default model, motion_vocab, trained beside it, analysis).
# `make beyond`: also train the other models beyond the paper (mdn_lstm, dance_transformer) for 05's rows.
# `make test`: set up everything and run the tests (unit tests + notebooks through nbval).
# `make lab`: open the notebooks in JupyterLab from the same environment.
SHELL := /bin/bash
VENV ?= .venv
PY := $(VENV)/bin/python
PRESET ?= $(or $(KAKASHI_PRESET),quick)
BEYOND ?= $(if $(filter smoke,$(PRESET)),,vocab)
comma := ,
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)

.PHONY: setup system-packages browser run beyond test lab bench notebooks clean

setup: system-packages $(VENV)/.installed

system-packages:
	@command -v ffmpeg >/dev/null && command -v ffprobe >/dev/null || \
	  ($(SUDO) apt-get update -q && $(SUDO) apt-get install -y -q ffmpeg)
	@python3 -c 'import venv, ensurepip' 2>/dev/null || \
	  ($(SUDO) apt-get update -q && $(SUDO) apt-get install -y -q python3-venv)

browser:
	@command -v chromium >/dev/null || ($(SUDO) apt-get update -q && $(SUDO) apt-get install -y -q chromium)

$(VENV)/.installed: requirements.txt pyproject.toml
	python3 -m venv $(VENV)
	$(PY) -m pip install -q -r requirements.txt
	$(PY) -m pip install -q --no-deps --no-build-isolation -e .
	touch $@

# the ten paper runs (two at a time) give way to the default model trained beside them, which thus
# has a core to itself: the job lasts as long as its training and 05 (the paper runs end first)
run: setup
	$(PY) -m kakashi synth --preset $(PRESET)
	KAKASHI_PRESET=$(PRESET) $(PY) -m kakashi sweep --preset $(PRESET) --nice 10 & sweep=$$!; \
	  for b in $(subst $(comma), ,$(BEYOND)); do $(PY) -m kakashi sweep --preset $$b --losses mse --workers 1 || failed=1; done; \
	  wait $$sweep && [ -z "$$failed" ]
	KAKASHI_PRESET=$(PRESET) $(PY) -m papermill notebooks/05_analysis.ipynb runs/05_analysis_$(PRESET).ipynb \
	  --cwd notebooks -p preset $(PRESET) -p beyond "$(BEYOND),best"
	@$(PY) -c 'from kakashi.runs import default_choice; print("choreograph dances with {}: {}".format(*default_choice()))'

# the other models beyond the paper, for 05's comparison rows (one after the other; 19 and 31 min,
# measured side by side on a 2-core machine where the main job takes 20.6 min)
beyond: setup
	$(PY) -m kakashi sweep --preset best --losses mse --workers 1
	$(PY) -m kakashi sweep --preset best --model dance_transformer --losses mse --workers 1

test: setup browser
	KAKASHI_PRESET=$(or $(KAKASHI_PRESET),smoke) $(PY) -m pytest tests notebooks --nbval-lax -p no:cacheprovider --timeout 900

lab: setup
	$(VENV)/bin/jupyter lab notebooks/

bench: setup
	for b in benchmarks/bench_*.py; do $(PY) $$b --quick || exit 1; done

# Execute every notebook on the preset (after `make run`) and commit-ready strip their heavy outputs.
notebooks: setup
	for nb in notebooks/0*.ipynb; do \
	  KAKASHI_PRESET=$(PRESET) $(PY) -m papermill $$nb $$nb --cwd notebooks || exit 1; done
	$(PY) .ci/strip_notebook_outputs.py notebooks/0*.ipynb

clean:
	rm -rf runs/ data/synth data/synth_smoke
