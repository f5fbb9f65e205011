#!/usr/bin/env bash
# Builds respscope with every test and runs the whole suite: unit tests, integration tests
# against a real redis-server, end-to-end tests with real clients, and the libFuzzer targets
# (60 s each under AddressSanitizer + UBSan). Installs what it needs first.
#   deploy/test.sh              everything
#   FUZZ_SECONDS=10 deploy/test.sh   shorter fuzzing
#   SKIP_FUZZ=1 deploy/test.sh       no fuzzing
set -euo pipefail
cd "$(dirname "$0")/.."
JOBS="${JOBS:-2}"

deploy/install-deps.sh --test
if [[ -f tests/e2e/node/package-lock.json ]]; then
  echo "test: npm ci (tests/e2e/node)"
  npm ci --prefix tests/e2e/node --no-audit --no-fund --loglevel=error
fi

cmake -S . -B build -DCMAKE_BUILD_TYPE=Release -DRESPSCOPE_TESTS=ON >/dev/null
cmake --build build -j"$JOBS"

status=0
if [[ -z "${SKIP_FUZZ:-}" ]]; then
  secs="${FUZZ_SECONDS:-60}"
  CXX=clang++ cmake -S . -B build-fuzz -DCMAKE_BUILD_TYPE=RelWithDebInfo -DRESPSCOPE_FUZZ=ON \
    -DRESPSCOPE_TESTS=OFF >/dev/null
  cmake --build build-fuzz -j"$JOBS" --target fuzz_request_scanner fuzz_reply_scanner \
    fuzz_session fuzz_router fuzz_jobs_msgpack fuzz_resp_value
  # target : seed corpus (tests/fuzz/corpus/...) : seconds
  for spec in "fuzz_request_scanner:request:$secs" "fuzz_reply_scanner:reply:$secs" \
              "fuzz_session:session:$secs" "fuzz_router:reply:$((secs / 2))" \
              "fuzz_jobs_msgpack:-:$((secs / 3))" "fuzz_resp_value:reply:$((secs / 3))"; do
    IFS=: read -r target corpus seconds <<<"$spec"
    bin=$(find build-fuzz -name "$target" -type f -perm -u+x | head -n 1)
    work=$(mktemp -d)
    [[ "$corpus" != "-" ]] && cp tests/fuzz/corpus/"$corpus"/* "$work/"
    echo "test: $target for ${seconds}s"
    (cd "$work" && "$OLDPWD/$bin" -dict="$OLDPWD/tests/fuzz/resp.dict" -max_total_time="$seconds" \
        -max_len=4096 -print_final_stats=1 . 2>&1 |
      grep -E 'stat::number_of_executed_units|ERROR|SUMMARY|crash-' || true)
    if ls "$work"/crash-* "$work"/leak-* "$work"/timeout-* >/dev/null 2>&1; then
      echo "test: $target FOUND A PROBLEM (inputs kept in $work)"; status=1
    else
      rm -rf "$work"
    fi
  done
fi

# Heavy end-to-end tests share 2 cores with the servers they start: run tests one at a time.
ctest --test-dir build --output-on-failure --timeout 600 || status=1
exit $status
