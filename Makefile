# The two commands a newcomer needs: `make up` (the system, locally) and `make test` (every test).
.PHONY: up test demo build release clean format

up:
	scripts/stack up

test:
	scripts/test

# Converts a generated sample video through the running (or a newly started) stack and shows the e-mail and the MP3.
demo:
	scripts/demo

build:
	scripts/install-deps
	cmake --preset dev
	cmake --build --preset dev

release:
	scripts/install-deps
	cmake --preset release
	cmake --build --preset release

format:
	clang-format -i $$(git ls-files '*.cpp' '*.hpp')

clean:
	rm -rf build
