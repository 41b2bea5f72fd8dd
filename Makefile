# Thin wrappers; the scripts are the source of truth (see README).
.PHONY: imp test bench fmt setup
imp:
	scripts/imp.sh
test:
	scripts/test.sh
bench:
	scripts/bench.sh
setup:
	scripts/setup.sh
fmt:
	cargo fmt --all
