# The pass/fail tally of the packaging checks (test-*.sh source it): "ok
# WHAT" and "FAIL WHAT" lines, `check WHAT COMMAND...`, and `finish LABEL`,
# which prints "LABEL: N passed, M failed" (what .ci/run counts) and fails
# when anything did.
passed=0
failed=0
ok() { echo "ok   $*"; passed=$((passed + 1)); }
bad() { echo "FAIL $*"; failed=$((failed + 1)); }
check() { local what=$1; shift; if "$@"; then ok "$what"; else bad "$what"; fi; }
finish() { echo "$1: $passed passed, $failed failed"; [ "$failed" -eq 0 ]; }
