# MmapKit — the front door. `make help` lists the targets.
SWIFT        ?= swift
CONFIG       ?= debug
# -Xcc flags reach both the C target and Swift's Clang importer; the C target is also checked
# on its own with gcc below, so a warning in it fails `make check` whichever compiler sees it.
C_WARNINGS   := -Wall -Wextra -Werror
SHIM_SOURCES := $(wildcard Sources/CMmapShim/*.c)

TOOLS        := Tools
MMAPKIT      := $(TOOLS)/.build/release/mmapkit
PREFIX       ?= /usr/local
DESTDIR      ?=
DOCS_OUT     := docs-site
SYMBOL_GRAPHS := .build-docs/symbol-graphs

FUZZ_SECONDS ?= 60
FUZZ_WORK    := .build-fuzz-corpus

.PHONY: help build snippets test test-debug test-release test-tools model-long oracles check check-c check-sanitizers lint lint-chokepoint format clean run bench tool \
	install uninstall docs fuzz
.PHONY: test-traits api api-check

help:
	@echo "make run           build the mmapkit tool and run 'mmapkit bench --quick' (seconds)"
	@echo "make bench         the full comparison (1 GiB) plus the package-benchmark suites"
	@echo "make build         build the library (CONFIG=debug|release)"
	@echo "make test          make snippets, the library's tests in debug and release (and with every trait), and the tool's end-to-end tests"
	@echo "make test-traits   the library's tests with the traits SystemInterop and FoundationInterop on"
	@echo "make api           regenerate api/MmapKit.api, the frozen public API (after an intended change)"
	@echo "make api-check     fail, with a diff, when the build's public API differs from api/MmapKit.api"
	@echo "make snippets      compile every swift code block of the README, the DocC articles and the doc comments"
	@echo "make model-long    the model-based sequence test at length (SEEDS=500 STEPS=10000: 5 million steps)"
	@echo "make check         warnings as errors (Swift, C), then the tests under ASan, TSan and UBSan"
	@echo "make fuzz          build the libFuzzer target and run it for FUZZ_SECONDS (default 60)"
	@echo "make install       install libMmapKit.{so,a}, the module and mmapkit.pc (PREFIX=$(PREFIX), DESTDIR)"
	@echo "make uninstall     remove exactly what make install recorded in its manifest"
	@echo "make docs          build the DocC site into $(DOCS_OUT)/ (warnings are errors)"
	@echo "make lint          no shim calls outside Sources/MmapKit/Internals; swift format lint --strict"
	@echo "make format        swift format in place"
	@echo "make clean         remove build output"

build:
	$(SWIFT) build -c $(CONFIG)

# Every ```swift block of the documentation, compiled against the library in a scratch package
# (.build-snippets); scripts/check-snippets.py --help has the conventions for authors.
snippets:
	python3 scripts/check-snippets.py

test: snippets test-debug test-release test-traits test-tools

test-debug:
	$(SWIFT) test -c debug

test-release:
	$(SWIFT) test -c release

# Package traits: the whole suite with SystemInterop and FoundationInterop on, in its own build
# folder (test-debug and test-release run it with both off), warnings as errors (make check covers
# the default build only). The 1 GiB ring throughput test and most model seeds are left to those
# runs: they exercise no code a trait adds or changes. scripts/api-dump.py builds with the same flags.
TRAITS_BUILD := .build-traits
test-traits:
	MMAPKIT_MODEL_SEEDS=2 $(SWIFT) test --scratch-path $(TRAITS_BUILD) --enable-all-traits -Xswiftc -warnings-as-errors \
		--skip aProducerAndAConsumerMoveOneGiBThroughA64KiBQueue

# The frozen public API (api/MmapKit.api, from the builds in .build and $(TRAITS_BUILD)). An
# intended change: `make api`, a CHANGELOG.md line, one commit. After a merge: `make api` again.
api:
	python3 scripts/api-dump.py --write

api-check:
	python3 scripts/api-dump.py --check

# The model-based sequence test at length: SEEDS seeds of STEPS steps each (release build).
# make test runs 20 seeds of 5,000 steps (100,000 steps) in debug and in release.
SEEDS        ?= 500
STEPS        ?= 10000
model-long:
	MMAPKIT_MODEL_SEEDS=$(SEEDS) MMAPKIT_MODEL_STEPS=$(STEPS) $(SWIFT) test -c release --filter ModelSequenceTests

# End-to-end tests of the mmapkit tool (run as a child process). vmtouch and fincore are their
# oracles; vmtouch is installed from Debian's packages when it is missing (CI runs as root).
test-tools: oracles
	$(SWIFT) test --package-path $(TOOLS)

oracles:
	@command -v vmtouch >/dev/null || { apt-get update -qq && apt-get install -y -qq vmtouch; } \
		|| { echo "make: the tool's tests need vmtouch (apt-get install vmtouch)"; exit 1; }

check: check-c check-sanitizers
	$(SWIFT) build --build-tests --scratch-path .build-check \
		-Xswiftc -warnings-as-errors $(addprefix -Xcc ,$(C_WARNINGS))

# The whole test suite under AddressSanitizer (every mapping path, the SIGBUS guard included)
# and ThreadSanitizer (which cannot deliver a recoverable SIGBUS: those tests skip themselves),
# and with UndefinedBehaviorSanitizer on the C target (Swift has no -sanitize=undefined on Linux).
# The model-based sequence test runs 5 of its 20 seeds here (make test runs all 20): under
# AddressSanitizer its 20 seeds alone took 13 of the 16 minutes of the suite.
SANITIZER_MODEL_SEEDS ?= 5

check-sanitizers:
	LSAN_OPTIONS=suppressions=$(CURDIR)/Tests/lsan-suppressions.txt MMAPKIT_MODEL_SEEDS=$(SANITIZER_MODEL_SEEDS) \
		$(SWIFT) test --sanitize=address --scratch-path .build-asan
	MMAPKIT_MODEL_SEEDS=$(SANITIZER_MODEL_SEEDS) $(SWIFT) test --sanitize=thread --scratch-path .build-tsan
	MMAPKIT_MODEL_SEEDS=$(SANITIZER_MODEL_SEEDS) $(SWIFT) test --scratch-path .build-ubsan -Xcc -fsanitize=undefined -Xcc -fno-sanitize-recover=undefined \
		-Xswiftc -Xclang-linker -Xswiftc -fsanitize=undefined

check-c:
	@for f in $(SHIM_SOURCES); do \
		echo "gcc $(C_WARNINGS) $$f"; \
		gcc -std=gnu11 -D_GNU_SOURCE $(C_WARNINGS) -ISources/CMmapShim/include -c $$f -o /dev/null || exit 1; \
	done

# The syscall chokepoint (design: "No public type calls the shim directly"): only
# Sources/MmapKit/Internals may name the shim (CMmapShim_*) or its Swift wrappers (system_*).
CHOKEPOINT_PATTERN := (CMmapShim_|system_)

lint: lint-chokepoint
	$(SWIFT) format lint --strict --recursive --parallel Package.swift Sources Tests Tools/Package.swift Tools/Sources Tools/Benchmarks \
		Fuzz/Package.swift Fuzz/Sources Examples

lint-chokepoint:
	@hits=$$(grep -rnE '$(CHOKEPOINT_PATTERN)' --include='*.swift' Sources/MmapKit | grep -v '^Sources/MmapKit/Internals/'); \
	if [ -n "$$hits" ]; then \
		echo "$$hits" | sed -E 's/^([^:]+:[0-9]+):.*$$/\1: error: names the shim outside Sources\/MmapKit\/Internals (call an Internals helper instead)/'; \
		echo "make: $$(echo "$$hits" | wc -l) shim reference(s) outside Sources/MmapKit/Internals"; \
		exit 1; \
	fi

format:
	$(SWIFT) format --in-place --recursive --parallel Package.swift Sources Tests Tools/Package.swift Tools/Sources Tools/Benchmarks \
		Fuzz/Package.swift Fuzz/Sources Examples

# mmapkit is linked statically (Tools/Package.swift); it runs mmapkit-cli (help, usage errors)
# and mmapkit-bench (bench) from its own directory.
tool:
	$(SWIFT) build -c release --package-path $(TOOLS) --product mmapkit
	$(SWIFT) build -c release --package-path $(TOOLS) --product mmapkit-cli
	$(SWIFT) build -c release --package-path $(TOOLS) --product mmapkit-bench

# The main job: MmapKit measured side by side with raw syscalls, Foundation and pread.
run: tool
	$(MMAPKIT) bench --quick

bench: tool
	$(MMAPKIT) bench
	python3 $(TOOLS)/Scripts/pagecache-bench.py --mmapkit $(MMAPKIT)
	cd $(TOOLS) && $(SWIFT) package benchmark --format markdown

# libFuzzer: a separate package (Fuzz/), never built by ordinary builds. New inputs go to an
# ignored work directory; Fuzz/Corpus holds the seeds, including those that found bugs.
fuzz:
	$(SWIFT) build --package-path Fuzz --sanitize=fuzzer --sanitize=address
	mkdir -p $(FUZZ_WORK)
	Fuzz/.build/debug/MmapKitFuzz -max_total_time=$(FUZZ_SECONDS) -print_final_stats=1 \
		-artifact_prefix=$(FUZZ_WORK)/ $(FUZZ_WORK) Fuzz/Corpus

install:
	scripts/install.sh "$(PREFIX)" "$(DESTDIR)"

uninstall:
	scripts/uninstall.sh "$(PREFIX)" "$(DESTDIR)"

# DocC with the toolchain's docc: symbol graphs from a dedicated build, then a static site.
docs:
	rm -rf .build-docs $(DOCS_OUT)  # symbol graphs are emitted only by a full build
	mkdir -p $(SYMBOL_GRAPHS)
	$(SWIFT) build --scratch-path .build-docs --target MmapKit \
		-Xswiftc -emit-symbol-graph -Xswiftc -emit-symbol-graph-dir -Xswiftc $(CURDIR)/$(SYMBOL_GRAPHS) \
		-Xswiftc -symbol-graph-minimum-access-level -Xswiftc public
	docc convert Sources/MmapKit/MmapKit.docc --additional-symbol-graph-dir $(SYMBOL_GRAPHS) \
		--output-path $(DOCS_OUT) --fallback-display-name MmapKit --fallback-bundle-identifier org.mmapkit.MmapKit \
		--transform-for-static-hosting --warnings-as-errors
	@echo "documentation: $(DOCS_OUT)/index.html (serve the folder; pages are under /documentation/mmapkit)"

clean:
	rm -rf .build .build-api-* .build-snippets .build-snippets-traits $(TRAITS_BUILD) .build-check .build-asan .build-tsan .build-ubsan .build-fuzz-corpus .build-docs .build-install $(DOCS_OUT) $(TOOLS)/.build Fuzz/.build

# --- Examples/segment-log: a crash-tested log on MmapKit, measured against SQLite (issue 18) ---
# Its tests (the crash test with 100 kills, disk full as root) run with make test; its SQLite
# comparison with make bench. `make -C Examples/segment-log crash-long` kills 1,000 times.
.PHONY: test-examples bench-examples clean-examples
test: test-examples
bench: bench-examples

test-examples:
	$(MAKE) -C Examples/segment-log test

bench-examples:
	$(MAKE) -C Examples/segment-log bench

clean: clean-examples
clean-examples:
	$(MAKE) -C Examples/segment-log clean
