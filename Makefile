# Thin wrappers; the scripts are the source of truth (see README).
.PHONY: imp test test-native test-browser test-notebooks bench bench-browser www serve notebooks fmt setup
imp:
	scripts/imp.sh
test:
	scripts/test.sh
test-native:
	scripts/test.sh native
test-browser:
	scripts/test.sh browser
test-notebooks:
	scripts/test.sh notebooks
bench:
	scripts/bench.sh
bench-browser:
	scripts/bench-browser.sh
www:
	scripts/build-www.sh
serve: www
	scripts/serve-www.py
notebooks:
	scripts/notebooks.sh
setup:
	scripts/setup.sh
fmt:
	cargo fmt --all
