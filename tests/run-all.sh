#!/bin/bash
# The whole test suite, as CI runs it: a warnings-as-errors build with
# ASan+UBSan running the unit and integration tests (integration tests need
# root and create their own network namespaces), the unit tests again under
# valgrind on a plain build, and `make distcheck`.
set -euo pipefail
top=$(cd "$(dirname "$0")/.." && pwd)
cd "$top"
jobs=$(nproc)

[ -x configure ] || autoreconf -fi

echo "=== 1/3 sanitizer build: unit + integration tests"
rm -rf _build-san && mkdir _build-san
(cd _build-san && ../configure -q --enable-werror --enable-sanitizers &&
	make -j"$jobs" -s && make -j"$jobs" check) || {
	find _build-san -name '*.log' -path '*tests*' -newer configure -exec grep -l -E '^(not ok|FAIL|ERROR)' {} + |
		while read -r f; do echo "--- $f"; tail -n 60 "$f"; done
	exit 1
}

unit_tests=$(sed -n 's/^UNIT_TESTS *+\?= *//p' Makefile.am | tr '\n' ' ')

echo "=== 2/3 plain build: unit tests under valgrind"
rm -rf _build-vg && mkdir _build-vg
(cd _build-vg && ../configure -q --enable-werror && make -j"$jobs" -s &&
	make -j"$jobs" check TESTS="$unit_tests" \
		LOG_COMPILER="valgrind --quiet --error-exitcode=99 --leak-check=full --errors-for-leak-kinds=definite" ) || {
	find _build-vg -name '*.log' -path '*tests*' -exec grep -l -E '^(not ok|FAIL|ERROR)|==[0-9]+==' {} + |
		while read -r f; do echo "--- $f"; tail -n 60 "$f"; done
	exit 1
}

echo "=== 3/3 make distcheck (the tarball builds, installs and passes the unit tests)"
(cd _build-vg && make -s distcheck DISTCHECK_CONFIGURE_FLAGS=--enable-werror TESTS="$unit_tests")

echo "All test stages passed."
