# The two commands of the README's quickstart. Both set everything up first (scripts/setup.sh).
#   make demo   check the zoo, compile LeNet-5, draw it, train it on the bundled digits data
#   make test   run the whole test suite

.PHONY: setup demo test gallery
VENV := .venv/bin
DEMO := specs/lenet.arch lenet5 --set act=relu

setup:
	@scripts/setup.sh

demo: setup
	$(VENV)/archdsl check specs
	$(VENV)/archdsl summary $(DEMO)
	mkdir -p out
	$(VENV)/archdsl compile $(DEMO) > out/lenet5_forward.py
	$(VENV)/archdsl draw $(DEMO) -o out/lenet5.svg
	$(VENV)/archdsl train $(DEMO) --data digits --epochs 50 --out runs/lenet5-digits

# One test process per core (pytest-xdist); tests/conftest.py gives each one thread for torch.
test: setup
	$(VENV)/python -m pytest -q -n auto --dist loadgroup

gallery: setup
	$(VENV)/python scripts/gallery.py
