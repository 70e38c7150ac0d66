# lanmsg tasks. `just` installs with: npm install -g rust-just

version := `git describe --tags --always --dirty 2>/dev/null || echo devel`
ldflags := "-X main.version=" + version

# List the recipes.
_help:
    @just --list

# Build bin/lanmsg, stamped with the git version.
build:
    go build -ldflags "{{ldflags}}" -o bin/lanmsg ./cmd/lanmsg

# Run the server without mDNS (safe anywhere); pass more flags after `just serve`.
serve *FLAGS:
    go run ./cmd/lanmsg serve --no-advertise {{FLAGS}}

# Run the whole test suite (the README's test command).
test:
    go test ./...

# Run the suite under the race detector.
race:
    go test -race ./...

# Lint: gofmt, go vet, and golangci-lint with the linters in .golangci.yml.
lint:
    test -z "$(gofmt -l $(git ls-files '*.go'))" || (gofmt -l $(git ls-files '*.go'); exit 1)
    go vet ./...
    go run github.com/golangci/golangci-lint/v2/cmd/golangci-lint@v2.6.2 run ./...

# Fuzz each fuzz target (frame reader, header parser, escaping, fingerprints, pin and allow files, names) for TIME (default 30s).
fuzz TIME="30s":
    for p in ./transport/ ./session/ ./session/trust/ ./session/names/; do for t in $(go test -list '^Fuzz' $p | grep '^Fuzz'); do go test -run='^$' -fuzz="^$t\$" -fuzztime={{TIME}} $p || exit 1; done; done

# Run the benchmarks.
bench: build
    go build -o bin/lanmsg-load ./cmd/lanmsg-load
    go build -o bin/lanmsg-minclient ./cmd/lanmsg-load/minclient
    go test -run='^$' -bench=. -benchmem ./transport/ ./session/ > bin/gobench.txt || (cat bin/gobench.txt; exit 1)
    go test -run='^$' -bench='^Benchmark(SendToName|BrowseFirstLine)$' -benchtime=20x ./cmd/lanmsg/ >> bin/gobench.txt || (cat bin/gobench.txt; exit 1)
    go test -run='^$' -bench='^BenchmarkOneShotSend$' -benchtime=20x ./cmd/lanmsg/ >> bin/gobench.txt || (cat bin/gobench.txt; exit 1)
    cat bin/gobench.txt
    bin/lanmsg-load bench -bin bin/lanmsg -gobench bin/gobench.txt
    bin/lanmsg-load webroom -bin bin/lanmsg

# Vet (tests included) and build the binaries for windows, darwin and freebsd, amd64 and arm64.
cross:
    bash .ci/cross

# Throughput against an earlier version REF (a commit or tag), run by run in one go.
bench-against REF: build
    rm -rf bin/ref && git worktree add --detach bin/ref {{REF}}
    cd bin/ref && go build -o ../lanmsg-ref ./cmd/lanmsg
    git worktree remove --force bin/ref
    go build -o bin/lanmsg-load ./cmd/lanmsg-load
    bin/lanmsg-load bench -bin bin/lanmsg -baseline bin/lanmsg-ref -no-python -lines 0 -sessions 0

# What CI runs.
ci:
    bash .ci/run

# Soak: many clients for DURATION, sent vs received and peak memory.
soak DURATION="30s":
    go build -o bin/lanmsg ./cmd/lanmsg && go run ./cmd/lanmsg-load soak -bin bin/lanmsg -duration {{DURATION}}
