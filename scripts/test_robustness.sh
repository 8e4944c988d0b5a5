#!/usr/bin/env bash
# Is the suite robust to a fresh checkout and to load? Clones this repository into a temp folder, runs
# `make test` there three times on the machine as it is, then once beside two CPU-bound processes (started
# and killed here), prints each run's result and the names of the tests that failed, and exits non-zero if
# any run failed.
#
#   scripts/test_robustness.sh                      # the full check: 3 quiet runs + 1 loaded run
#   scripts/test_robustness.sh --quick 'layering'   # one loaded pass of `pytest -k layering` (proves the script)
#   scripts/test_robustness.sh --runs 1 --keep      # options: --runs N quiet runs, --keep the clone
#
# The clone shares this checkout's venv (a symlink, as the worktrees do), so no wheels are downloaded;
# ENPIRE_FRESH_VENV=1 makes the clone build its own. Each run takes its graph tests' ROS domains from
# ENPIRE_TEST_DOMAIN_BASE/_SPAN when set.
set -uo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
runs=3
quick=''
keep=0
while [ $# -gt 0 ]; do
  case "$1" in
    --runs) runs="$2"; shift 2 ;;
    --quick) quick="$2"; runs=0; shift 2 ;;
    --keep) keep=1; shift ;;
    -h|--help) sed -n '2,15p' "$0"; exit 0 ;;
    *) echo "unknown option $1 (see --help)" >&2; exit 2 ;;
  esac
done

work="$(mktemp -d /tmp/enpire_robustness.XXXXXX)"
clone="$work/repo"
burners=()
cleanup() {
  for pid in "${burners[@]}"; do kill "$pid" 2>/dev/null; done
  if [ "$keep" = 1 ]; then echo "clone and logs kept in $work"; else rm -rf "$work"; fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM

echo "[robustness] cloning $here (HEAD $(git -C "$here" rev-parse --short HEAD)) into $clone"
git clone --quiet --no-hardlinks "$here" "$clone" || exit 2
if [ "${ENPIRE_FRESH_VENV:-0}" != 1 ] && [ -x "$here/.venv/bin/python" ]; then
  ln -s "$(readlink -f "$here/.venv")" "$clone/.venv"
fi

results=()
failed_any=0
export PYTEST_ADDOPTS="${PYTEST_ADDOPTS:-} -rfE"    # a summary line naming every failed test

# One `make test` (or, with --quick, the set-up and a `pytest -k` subset) in the clone; its log and the
# names of the failed tests are kept.
one_run() {
  local label="$1" log="$work/$1.log" t0 rc
  t0=$(date +%s)
  if [ -n "$quick" ]; then
    (set +u; cd "$clone" && make setup && . ./env.sh && python -m pytest tests -k "$quick") > "$log" 2>&1
  else
    (set +u; cd "$clone" && make test) > "$log" 2>&1
  fi
  rc=$?
  local summary failures status
  summary=$(grep -E '^(=+ )?[0-9]+ (passed|failed)|(passed|failed|error).* in [0-9.]+s' "$log" | tail -1)
  failures=$(grep -E '^(FAILED|ERROR) ' "$log" | sed -E 's/^(FAILED|ERROR) ([^ ]+).*/\2/' | sort -u)
  if [ "$rc" = 0 ]; then
    status="$label: PASS in $(( $(date +%s) - t0 )) s ($summary)"
    results+=("$status")
  else
    failed_any=1
    status="$label: FAIL (exit $rc) in $(( $(date +%s) - t0 )) s ($summary); log $log"
    results+=("$status")
    if [ -n "$failures" ]; then
      while read -r name; do results+=("    failed: $name"); done <<< "$failures"
    else
      results+=("    no test named as failed; last lines of the log:")
      while read -r line; do results+=("    | $line"); done < <(tail -5 "$log")
    fi
  fi
  echo "[robustness] $status"
}

for i in $(seq 1 "$runs"); do
  echo "[robustness] run $i of $runs: make test on the machine as it is"
  one_run "quiet_$i"
done

echo "[robustness] loaded run: two CPU-bound processes beside the suite"
for _ in 1 2; do
  python3 -c 'while True: pass' &
  burners+=("$!")
done
one_run "loaded"
for pid in "${burners[@]}"; do kill "$pid" 2>/dev/null; wait "$pid" 2>/dev/null; done
burners=()

echo
echo "[robustness] results (clone of $(git -C "$clone" rev-parse --short HEAD)):"
printf '  %s\n' "${results[@]}"
if [ "$failed_any" != 0 ]; then
  [ "$keep" = 1 ] || keep=1   # keep the logs of a failed run
  exit 1
fi
exit 0
