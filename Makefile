# offkit: `make demo` runs the whole operator's day on the bundled example
# with no network; `make test` runs the tests.
SHELL := /bin/bash
export GOTOOLCHAIN := local
GO ?= go
BIN := $(CURDIR)/bin
OFFKIT := $(BIN)/offkit
DEMO := $(CURDIR)/_demo
EXAMPLE := examples/zastava-runtime
RACE_PKGS := ./internal/... ./kit/... ./verify/... ./site/... ./registry/... ./serve/... ./images/... ./push/... ./authority/... ./debugstore/... ./mirror/...

.PHONY: all build demo walkthrough test race vet interop bench clean

all: build

build:
	$(GO) build -o $(OFFKIT) ./cmd/offkit

demo: build
	rm -rf $(DEMO) && mkdir -p $(DEMO)
	$(GO) run ./$(EXAMPLE)/mkimage -o $(EXAMPLE)/_image
	cd $(DEMO) && COSIGN_PASSWORD=demo $(OFFKIT) key generate --output-key-prefix demo
	COSIGN_PASSWORD=demo $(OFFKIT) build -f $(EXAMPLE)/kit.yaml -o $(DEMO) --key $(DEMO)/demo.key
	$(OFFKIT) inspect $(DEMO)/zastava-runtime-1.4.2.kit.tar.zst
	$(OFFKIT) verify $(DEMO)/zastava-runtime-1.4.2.kit.tar.zst --key $(DEMO)/demo.pub
	$(OFFKIT) install $(DEMO)/zastava-runtime-1.4.2.kit.tar.zst --root $(DEMO)/site --key $(DEMO)/demo.pub
	$(OFFKIT) status --root $(DEMO)/site
	bash scripts/demo-serve.sh $(OFFKIT) $(DEMO)/site
	$(OFFKIT) debug fetch 5e0bb3a1c0a4e34fa1b35de9a62e2a0b1c6f8d17 -o $(DEMO)/zastava-observer.debug --from $(DEMO)/zastava-runtime-1.4.2.kit.tar.zst --key $(DEMO)/demo.pub
	COSIGN_PASSWORD=demo $(OFFKIT) build -f examples/authority-snapshot/kit.yaml -o $(DEMO) --key $(DEMO)/demo.key
	$(OFFKIT) install $(DEMO)/stellaops-authority-2026.11.20.kit.tar.zst --root $(DEMO)/site --key $(DEMO)/demo.pub
	bash scripts/demo-authority.sh $(OFFKIT) $(DEMO)/site

# The README's operator's day, run for real: two releases, install, serve,
# refusal, rollback, a damaged kit; then check that the README shows what it
# printed (scripts/walkthrough.sh --readme prints the README's copy).
walkthrough: build
	bash scripts/walkthrough.sh $(OFFKIT) $(CURDIR)/_walkthrough
	bash scripts/walkthrough.sh --check README.md $(OFFKIT) $(CURDIR)/_walkthrough

vet:
	test -z "$$(gofmt -l $$(git ls-files '*.go'))" || (gofmt -l $$(git ls-files '*.go'); exit 1)
	$(GO) vet ./...

test: vet
	$(GO) test -count=1 -timeout 30m ./...
	$(GO) test -count=1 -timeout 30m -race $(RACE_PKGS)

interop: build
	bash scripts/install-interop-tools.sh
	PATH=$(BIN):$$PATH OFFKIT=$(OFFKIT) OFFKIT_INTEROP=make $(GO) test -count=1 -timeout 30m -tags interop ./...

bench: build
	$(GO) test -run '^$$' -bench . -benchtime 3x ./internal/seekable/ ./kit/ ./verify/ ./registry/ ./authority/ ./mirror/ ./site/
	bash scripts/bench.sh
	bash scripts/bench-serve.sh
	bash scripts/bench-mirror.sh
	bash scripts/bench-debug.sh

clean:
	rm -rf $(BIN) $(DEMO) $(CURDIR)/_walkthrough $(EXAMPLE)/_image
