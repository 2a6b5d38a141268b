# The two commands a newcomer needs: `make up` (the system, locally) and `make test` (every test).
.PHONY: up test demo build release images clean format

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

# The container images (deploy/Dockerfile), with docker or podman, whichever exists.
VERSION ?= 0.1.0
images:
	@engine=$$(scripts/container-engine) || exit 1; \
	for target in auth gateway converter notification client; do \
		name=$$target; [ $$target = client ] && name=mp3conv; \
		echo "make images: mp3converter/$$name:$(VERSION)"; \
		$$engine build -f deploy/Dockerfile --target $$target -t mp3converter/$$name:$(VERSION) . || exit 1; \
	done

format:
	clang-format -i $$(git ls-files '*.cpp' '*.hpp')

clean:
	rm -rf build
