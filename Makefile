# `make run`: set up and start Delineate on the bundled sample.  `make test`: set up and run every check.
VENV ?= .venv
PY := $(VENV)/bin/python
PYTHON ?= python3
# Qt's xcb platform, Xvfb for headless GUI tests, GL for VTK, DICOM validators and a PACS (Orthanc) for the tests.
APT_PACKAGES := xvfb xauth libgl1 libegl1 libglib2.0-0 libfontconfig1 libdbus-1-3 libxkbcommon0 \
  libxkbcommon-x11-0 libxcb-cursor0 libxcb-icccm4 libxcb-image0 libxcb-keysyms1 libxcb-randr0 \
  libxcb-render-util0 libxcb-shape0 libxcb-xinerama0 libxcb-xkb1 libxcb-xfixes0 libx11-xcb1 \
  dcmtk dicom3tools python3-venv orthanc orthanc-dicomweb postgresql

.PHONY: run test setup system-deps bench screenshots clean package package-test

system-deps:
	@SUDO=""; [ "$$(id -u)" = 0 ] || SUDO="sudo"; \
	if command -v apt-get >/dev/null 2>&1; then \
	  missing=$$(for p in $(APT_PACKAGES); do dpkg -s $$p >/dev/null 2>&1 || echo $$p; done); \
	  if [ -n "$$missing" ]; then \
	    $$SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq --no-install-recommends $$missing; \
	  fi; \
	else echo "not a Debian system: install the equivalents of: $(APT_PACKAGES)"; fi

$(VENV)/.installed: requirements.txt requirements-dev.txt requirements-nodeps.txt
	$(PYTHON) -m venv $(VENV)
	$(VENV)/bin/pip install -q --upgrade pip
	$(VENV)/bin/pip install -q -r requirements-dev.txt
	$(VENV)/bin/pip install -q --no-deps -r requirements-nodeps.txt
	touch $@

setup: system-deps $(VENV)/.installed

run: setup
	$(PY) main.py

test: setup
	$(VENV)/bin/lint-imports
	@# Xvfb outlives pytest (xvfb-run), so VTK's X connection closes cleanly at exit
	@xvfb-run -a -s "-screen 0 1600x1000x24" $(PY) -m pytest -q -p no:xvfb; rc=$$?; \
	if [ $$rc -eq 5 ]; then echo "pytest collected no tests: failing" >&2; exit 1; fi; [ $$rc -eq 0 ] || exit $$rc
	@# again on the fp32 path most users' CPUs take (no bf16 units), whatever this machine has
	DELINEATE_CPU_BF16=0 $(PY) -m pytest -q -p no:xvfb -m precision

bench: setup
	$(PY) bench/open_series.py
	$(PY) bench/inference.py
	xvfb-run -a -s "-screen 0 1600x1000x24" $(PY) bench/first_mask.py
	$(PY) bench/xai.py
	$(PY) bench/export.py
	xvfb-run -a -s "-screen 0 1600x1000x24" $(PY) bench/viewer.py
	xvfb-run -a -s "-screen 0 1600x1000x24" $(PY) bench/editing.py
	xvfb-run -a -s "-screen 0 1600x1000x24" $(PY) bench/startup.py
	$(PY) bench/federated.py

screenshots: setup
	xvfb-run -a -s "-screen 0 1600x1000x24" $(PY) docs/screenshots.py
	xvfb-run -a -s "-screen 0 1600x1000x24" $(PY) docs/screenshots.py --explain
	$(PY) docs/screenshots.py --report

# The one-folder application (dist/delineate/) from packaging/delineate.spec; PyInstaller goes into the venv
# only here (`make test` does not need it). package-test: its self-test under Xvfb (make test runs the wheel's).
package: setup
	$(VENV)/bin/python -c "import PyInstaller" 2>/dev/null || $(VENV)/bin/pip install -q pyinstaller
	nice -n 19 $(VENV)/bin/pyinstaller --noconfirm --log-level WARN --distpath dist --workpath build/pyinstaller \
	  packaging/delineate.spec
	cp packaging/delineate.desktop resources/icons/delineate.png dist/delineate/
	tar -C dist -czf dist/delineate-linux-x86_64.tar.gz delineate
	@du -sh dist/delineate dist/delineate-linux-x86_64.tar.gz

package-test:
	cd /tmp && xvfb-run -a -s "-screen 0 1600x1000x24" $(CURDIR)/dist/delineate/delineate --selftest

clean:
	rm -rf $(VENV) .pytest_cache
