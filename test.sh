#!/usr/bin/env bash
# Runs every test of the backend, on a fresh machine as on a warm one:
# formatting, go vet, staticcheck, unit tests beside the code and the
# end-to-end tests in tests/ (which build and run cmd/local and cmd/admin
# themselves).
set -euo pipefail
cd "$(dirname "$0")"

if ! command -v go >/dev/null; then
  echo "test.sh: hace falta Go 1.26 (https://go.dev/dl/)" >&2
  exit 1
fi

# need installs Debian package $1 when its command is missing (as root,
# on a fresh machine), or says what is missing and why ($2).
need() {
  command -v "$1" >/dev/null && return 0
  echo "== instalando $1"
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
    apt-get update -qq && apt-get install -y -qq "$1" >/dev/null
  else
    echo "test.sh: falta $1, $2 (apt-get install $1)" >&2
    exit 1
  fi
}
need shellcheck "que revisa deploy.sh"
need chromium "para la prueba con navegador (tests/browser_test.go)"

echo "== go mod download"
go mod download

echo "== gofmt"
unformatted=$(find . -name '*.go' -not -path './.git/*' -print0 | xargs -0 gofmt -l)
if [ -n "$unformatted" ]; then
  echo "sin formato (corra gofmt -w):" >&2
  echo "$unformatted" >&2
  exit 1
fi

echo "== go vet"
go vet ./...

# staticcheck at a pinned version (2026.2.2, which knows Go 1.26), built
# from the module proxy on first use and cached after.
echo "== staticcheck"
go run honnef.co/go/tools/cmd/staticcheck@v0.8.2 ./...

echo "== shellcheck"
shellcheck deploy.sh test.sh .ci/run

# The race detector needs cgo and a C compiler; without them the tests
# still run, without it.
race=()
if [ "$(go env CGO_ENABLED)" = 1 ] && command -v "$(go env CC)" >/dev/null; then
  race=(-race)
else
  echo "test.sh: sin compilador C, las pruebas corren sin -race" >&2
fi

echo "== go test ${race[*]} ./..."
go test "${race[@]}" -count=1 ./...
