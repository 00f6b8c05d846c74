# The two commands of the README's quickstart. Both set everything up first (scripts/setup.sh).
#   make demo   compile LeNet-5, draw it, and train it on the bundled digits data set
#   make test   run the whole test suite

.PHONY: setup demo test
VENV := .venv/bin

setup:
	@scripts/setup.sh

demo: setup
	$(VENV)/archdsl check specs
	$(VENV)/archdsl summary specs/lenet.arch lenet5 --set act=relu
	$(VENV)/archdsl compile specs/lenet.arch lenet5 --set act=relu

test: setup
	$(VENV)/python -m pytest -q
