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

echo "=== 1/4 sanitizer build: unit + integration tests"
rm -rf _build-san && mkdir _build-san
(cd _build-san && ../configure -q --enable-werror --enable-sanitizers &&
	make -j"$jobs" -s && make -j"$jobs" check) || {
	find _build-san -name '*.log' -path '*tests*' -newer configure -exec grep -l -E '^(not ok|FAIL|ERROR)' {} + |
		while read -r f; do echo "--- $f"; tail -n 60 "$f"; done
	exit 1
}

unit_tests=$(sed -n 's/^UNIT_TESTS *+\?= *//p' Makefile.am | tr '\n' ' ')

echo "=== 2/4 plain build: unit tests under valgrind"
rm -rf _build-vg && mkdir _build-vg
(cd _build-vg && ../configure -q --enable-werror && make -j"$jobs" -s &&
	make -j"$jobs" check TESTS="$unit_tests" \
		LOG_COMPILER="valgrind --quiet --error-exitcode=99 --leak-check=full --errors-for-leak-kinds=definite" ) || {
	find _build-vg -name '*.log' -path '*tests*' -exec grep -l -E '^(not ok|FAIL|ERROR)|==[0-9]+==' {} + |
		while read -r f; do echo "--- $f"; tail -n 60 "$f"; done
	exit 1
}

echo "=== 3/4 make distcheck (the tarball builds, installs and passes the unit tests)"
(cd _build-vg && make -s distcheck DISTCHECK_CONFIGURE_FLAGS=--enable-werror TESTS="$unit_tests")

echo "=== 4/4 build matrix: modes compiled out"
for flags in "--disable-ipvs --disable-userspace" "--disable-iptables"; do
	rm -rf _build-matrix && mkdir _build-matrix
	# Build everything, test programs included (they run in stages 1-3).
	(cd _build-matrix && ../configure -q --enable-werror $flags && make -j"$jobs" -s &&
		make -j"$jobs" -s check TESTS= >/dev/null)
	gone=$(echo "$flags" | sed 's/--disable-\([a-z]*\).*/\1/')
	# kube-proxy must fail here; capture first so pipefail does not see it.
	out=$(_build-matrix/kube-proxy --proxy-mode="$gone" --manifest-dir=contrib/examples --dry-run --log-file= 2>&1 || true)
	if grep -q "not compiled into this binary" <<<"$out"; then
		echo "ok - $flags: builds, and --proxy-mode=$gone says it is compiled out"
	else
		echo "not ok - $flags: --proxy-mode=$gone is not refused as compiled out"; exit 1
	fi
done
rm -rf _build-matrix

count() { sed -n "s/^# $1: *//p" "$2"; }
passed=$(( $(count PASS _build-san/test-suite.log) + $(count PASS _build-vg/test-suite.log) ))
failed=$(( $(count FAIL _build-san/test-suite.log) + $(count FAIL _build-vg/test-suite.log) ))
echo "All test stages passed."
echo "$passed passed, $failed failed"
