# Suite accounting for .ci/run (sourced). A suite counts as passed only when all of these hold:
# it exits 0, it prints a totals line `N passed, N failed[, N skipped]`, it ran at least one
# test, and its totals say 0 failed. Anything else adds failures: a suite that crashes after
# printing good totals, prints none, or runs nothing cannot pass CI. Under CI=true the test
# files turn a skip for a missing capability into a failure (test/support/capability.ts), so
# skips that reach these totals are reported, and counted as failures when CI_FAIL_ON_SKIP=1.

total_passed=0 total_failed=0 total_skipped=0

# run_suite NAME COMMAND… : runs the command with its output in build/ci-NAME.log and adds its
# totals to the run's.
run_suite() {
  local name=$1; shift
  echo "ci: suite $name: $*"
  mkdir -p build
  local out=build/ci-$name.log
  "$@" 2>&1 | tee "$out"
  local status=${PIPESTATUS[0]}
  count_suite "$name" "$status" "$out"
}

# count_suite NAME EXIT_STATUS LOG : the accounting itself (tested by test/79-ci-suites.test.ts).
count_suite() {
  local name=$1 status=$2 out=$3
  local line
  line=$(grep -E '^([A-Za-z]+: )?[0-9]+ passed, [0-9]+ failed' "$out" | tail -n1 | sed -E 's/^[A-Za-z]+: //')
  if [ -z "$line" ]; then
    echo "ci: suite $name printed no totals line (exit $status)"; total_failed=$((total_failed + 1)); return
  fi
  local p f s
  p=$(echo "$line" | sed -E 's/^([0-9]+) passed.*/\1/')
  f=$(echo "$line" | sed -E 's/^[0-9]+ passed, ([0-9]+) failed.*/\1/')
  s=$(echo "$line" | grep -oE '[0-9]+ skipped' | grep -oE '[0-9]+' || true)
  s=${s:-0}
  total_passed=$((total_passed + p)); total_failed=$((total_failed + f)); total_skipped=$((total_skipped + s))
  if [ $((p + f)) -eq 0 ]; then
    echo "ci: suite $name ran no test"; total_failed=$((total_failed + 1))
  fi
  if [ "$status" -ne 0 ] && [ "$f" -eq 0 ]; then
    echo "ci: suite $name exited $status although its totals show no failure"; total_failed=$((total_failed + 1))
  fi
  if [ "$s" -gt 0 ] && [ "${CI_FAIL_ON_SKIP:-0}" = 1 ]; then
    echo "ci: suite $name skipped $s test(s)"; total_failed=$((total_failed + s))
  fi
}

# step NAME COMMAND… : a build or check that is not a test suite; failing it is one failure.
step() {
  local name=$1; shift
  echo "ci: step $name: $*"
  mkdir -p build
  if ! "$@" >"build/ci-$name.log" 2>&1; then
    echo "ci: step $name failed (build/ci-$name.log):"; tail -n 40 "build/ci-$name.log"; total_failed=$((total_failed + 1)); return 1
  fi
  tail -n 20 "build/ci-$name.log"
}

print_totals() {
  echo
  if [ "$total_skipped" -gt 0 ]; then
    echo "$total_passed passed, $total_failed failed, $total_skipped skipped"
  else
    echo "$total_passed passed, $total_failed failed"
  fi
}
