#!/usr/bin/env bash
# Model-checks the checkout protocol (model/checkout.pml) with SPIN.
#
#   bash model/check.sh            (or: npm run model:check)
#
# Runs the safety check (assertions + stuck states, exhaustive), the liveness check (<>[] DONE
# under weak fairness), the sanity claims (commit, abort and the barrier are reachable; an abort
# completes without an ack of it: presumed abort), the same with mixed versions (a participant
# that still acks aborts) and the seeded bugs, which must be caught; two builds at a time (JOBS=n to change). Prints one line per
# check with the states explored and the time, and exits non-zero unless every check gave its
# expected result: no violation for the real protocol, a violation for every seeded bug.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
model="$here/checkout.pml"
jobs="${JOBS:-2}"

if ! command -v spin >/dev/null 2>&1; then
  echo "spin not found: installing the Debian package"
  sudo=""
  if [ "$(id -u)" -ne 0 ] && command -v sudo >/dev/null 2>&1; then sudo="sudo"; fi
  ($sudo apt-get update && $sudo apt-get install -y spin) >/dev/null
fi
command -v gcc >/dev/null 2>&1 || { echo "gcc is required to compile SPIN's verifier" >&2; exit 2; }

work="$(mktemp -d "${TMPDIR:-/tmp}/checkout-model.XXXXXX")"
trap 'rm -rf "$work"' EXIT

# Fault bounds. Every fault is optional at every step, so a bound covers all runs with fewer
# faults. Safety is exhaustive over the larger bounds (with the symmetry reduction: the two
# participants are interchangeable); liveness over the smaller ones (weak fairness multiplies the
# work by the number of processes, and the symmetry reduction would not preserve it).
SAFETY_BOUNDS="-DMAXCRASH=2 -DMAXDUP=2 -DMAXLOSS=1"
LIVE_BOUNDS="-DMAXCRASH=1 -DMAXDUP=1 -DMAXLOSS=1"
# In stages the state space is smaller (a declined payment ends at its vote): one duplicate more.
STAGED_LIVE_BOUNDS="-DMAXCRASH=1 -DMAXDUP=2 -DMAXLOSS=1"
NO_FAULTS="-DMAXCRASH=0 -DMAXDUP=0 -DMAXLOSS=0"

# Builds: name | spin -D flags | gcc flags. One spin -a and one compile each.
builds=(
  "live|$LIVE_BOUNDS|-O2"
  "safety|-DSYMMETRY $SAFETY_BOUNDS|-O2 -DSAFETY -DNOCLAIM"
  "reach|-DSYMMETRY -DREACH $SAFETY_BOUNDS|-O0 -DSAFETY"
  "staged_live|-DSTAGED $STAGED_LIVE_BOUNDS|-O2"
  "staged_safety|-DSTAGED $SAFETY_BOUNDS|-O2 -DSAFETY -DNOCLAIM"
  "staged_reach|-DSTAGED -DREACH $SAFETY_BOUNDS|-O0 -DSAFETY"
  "mixed_safety|-DOLD_P0 $SAFETY_BOUNDS|-O2 -DSAFETY -DNOCLAIM"
  "bug_no_barrier|-DBUG_NO_BARRIER $NO_FAULTS|-O0 -DSAFETY -DNOCLAIM -DBFS"
  "bug_unilateral_abort|-DBUG_UNILATERAL_ABORT $NO_FAULTS|-O0 -DSAFETY -DNOCLAIM -DBFS"
  "bug_no_resend|-DBUG_NO_RESEND -DMAXCRASH=0 -DMAXDUP=0 -DMAXLOSS=1|-O0"
  "bug_no_timeout|-DBUG_NO_TIMEOUT -DMAXCRASH=0 -DMAXDUP=0 -DMAXLOSS=1|-O0"
  "bug_no_inquiry|-DBUG_NO_INQUIRY -DMAXCRASH=0 -DMAXDUP=0 -DMAXLOSS=1|-O0 -DSAFETY -DNOCLAIM -DBFS"
)

# Checks: name | build | expect (none = no violation, violation = must be found) | pan flags | what
checks=(
  "liveness|live|none|-a -f -N live -m10000 -w22|<>[] DONE under weak fairness"
  "safety|safety|none|-m10000 -w24|atomicity, promise, nothing held, exactly-once, no poison, no stuck state"
  "reach_commit|reach|violation|-N reach_commit -m10000 -w22|sanity: a committed, completed run exists"
  "reach_abort|reach|violation|-N reach_abort -m10000 -w22|sanity: an aborted, completed run exists"
  "reach_barrier|reach|violation|-N reach_barrier -m10000 -w22|sanity: a late prepare meets the tombstone"
  "reach_commit_all_faults|reach|violation|-N reach_commit_all_faults -m10000 -w22|sanity: commit with every fault used"
  "reach_abort_without_ack|reach|violation|-N reach_abort_without_ack -m10000 -w22|presumed abort: an abort completes with no ack of it"
  "staged_liveness|staged_live|none|-a -f -N live -m10000 -w22|in stages (payment first): <>[] DONE under weak fairness"
  "staged_safety|staged_safety|none|-m10000 -w24|in stages: atomicity, promise, nothing held, exactly-once, no stuck state"
  "staged_reach_commit|staged_reach|violation|-N reach_commit -m10000 -w22|sanity, in stages: a committed, completed run exists"
  "staged_reach_abort|staged_reach|violation|-N reach_abort -m10000 -w22|sanity, in stages: an aborted, completed run exists"
  "staged_reach_abort_without_ack|staged_reach|violation|-N reach_abort_without_ack -m10000 -w22|presumed abort, in stages: an abort completes with no ack of it"
  "mixed_safety|mixed_safety|none|-m10000 -w24|mixed versions (P0 still acks aborts): every safety property, no stuck state"
  "bug_no_barrier|bug_no_barrier|violation|-m10000 -w20|seeded bug: no tombstone"
  "bug_unilateral_abort|bug_unilateral_abort|violation|-m10000 -w20|seeded bug: a yes is not kept"
  "bug_no_resend|bug_no_resend|violation|-a -f -N live -m10000 -w20|seeded bug: no decision re-send (stuck)"
  "bug_no_timeout|bug_no_timeout|violation|-a -f -N live -m10000 -w20|seeded bug: no prepare deadline (livelock)"
  "bug_no_inquiry|bug_no_inquiry|violation|-m10000 -w20|seeded bug: no inquiry (a lost abort is never re-sent: stuck PREPARED)"
)

now() { date +%s.%N; }
since() { awk -v s="$1" -v e="$(now)" 'BEGIN { printf "%.1f", e - s }'; }

# Builds the verifier for one build, then runs its checks one after the other.
run_build() {
  local build="$1" spin_flags="$2" gcc_flags="$3"
  local dir="$work/$build" entry name b expect pan_flags what start
  mkdir -p "$dir"
  cp "$model" "$dir/checkout.pml"
  cd "$dir"
  start="$(now)"
  # shellcheck disable=SC2086
  if ! { spin $spin_flags -a checkout.pml && gcc -w $gcc_flags -o pan pan.c; } >build.out 2>&1; then
    cp build.out build.failed
    return 0
  fi
  since "$start" >build.time
  for entry in "${checks[@]}"; do
    IFS='|' read -r name b expect pan_flags what <<<"$entry"
    [ "$b" = "$build" ] || continue
    start="$(now)"
    # shellcheck disable=SC2086
    ./pan $pan_flags >"$name.out" 2>&1 || true
    since "$start" >"$name.time"
    if [ -f checkout.pml.trail ]; then mv checkout.pml.trail "$name.trail"; fi
  done
}

running=0
for entry in "${builds[@]}"; do
  IFS='|' read -r build spin_flags gcc_flags <<<"$entry"
  if [ "$running" -ge "$jobs" ]; then
    wait -n || true
    running=$((running - 1))
  fi
  (run_build "$build" "$spin_flags" "$gcc_flags") &
  running=$((running + 1))
done
wait || true

echo "SPIN $(spin -V 2>/dev/null | sed -n 's/^Spin Version \([^ ]*\).*/\1/p') model check of model/checkout.pml"
echo "  safety bounds: ${SAFETY_BOUNDS//-D/}; liveness bounds: ${LIVE_BOUNDS//-D/} (in stages: ${STAGED_LIVE_BOUNDS//-D/})"
passed=0
failed=0
for entry in "${checks[@]}"; do
  IFS='|' read -r name build expect _pan_flags what <<<"$entry"
  dir="$work/$build"
  out="$dir/$name.out"
  errors=""
  states=""
  found=""
  if [ -f "$dir/build.failed" ]; then
    note="build failed: $(tr '\n' ' ' <"$dir/build.failed" | head -c 600)"
  elif [ ! -f "$out" ]; then
    note="no output"
  else
    errors="$(sed -n 's/.*errors: \([0-9][0-9]*\).*/\1/p' "$out" | tail -1)"
    states="$(sed -n 's/^ *\([0-9.e+]*\) states, stored.*/\1/p' "$out" | tail -1)"
    found="$(grep -m1 -E 'assertion violated|acceptance cycle|invalid end state|claim violated' "$out" || true)"
    note=""
  fi
  incomplete="$( [ -f "$out" ] && grep -m1 -E 'max search depth too small|out of memory|search not completed' "$out" || true)"
  verdict="FAIL"
  if [ -z "$errors" ]; then
    note="${note:-no result}"
  elif [ "$expect" = none ] && [ -n "$incomplete" ]; then
    note="search incomplete: $incomplete"
  elif [ "$expect" = none ] && [ "$errors" -eq 0 ]; then
    verdict="PASS"
    note="no violation"
  elif [ "$expect" = violation ] && [ "$errors" -gt 0 ]; then
    verdict="PASS"
    note="violation found, as expected"
  elif [ "$expect" = none ]; then
    note="VIOLATION: ${found:-see the output}"
  else
    note="expected a violation, none found"
  fi
  if [ "$verdict" = PASS ]; then passed=$((passed + 1)); else failed=$((failed + 1)); fi
  printf '%s %-24s errors: %-2s states: %-9s time: %5ss  %s: %s\n' "$verdict" "$name" "${errors:-?}" \
    "${states:-?}" "$(cat "$dir/$name.time" 2>/dev/null || echo '?')" "$what" "$note"
  if [ "$expect" = violation ] && [ -n "$found" ]; then echo "       ${found#pan:1: }"; fi
  if [ "$verdict" = FAIL ] && [ -f "$out" ]; then sed 's/^/       | /' "$out" | head -30; fi
done

# The seeded bug's counterexample, replayed (BFS found a shortest one; no faults are needed).
dir="$work/bug_no_barrier"
if [ -f "$dir/bug_no_barrier.trail" ]; then
  echo
  echo "Counterexample for bug_no_barrier (a shortest one; it needs no crash, duplicate or loss):"
  cp "$dir/bug_no_barrier.trail" "$dir/checkout.pml.trail"
  # shellcheck disable=SC2086
  replay="$(cd "$dir" && spin -DBUG_NO_BARRIER $NO_FAULTS -t checkout.pml 2>&1 || true)"
  { grep -E '^ *[A-Za-z(]' <<<"$replay" || true; } |
    { grep -v -E '^ *(ltl |spin: (trail|warning)|#processes|[0-9]+ process|proc )' || true; } |
    sed 's/^ */  /' | head -40
  { grep -E '^[[:space:]]*(cst|cack\[[01]\]|pst\[[01]\]|reserved\[[01]\]) =' <<<"$replay" || true; } |
    tr -s ' \t' ' ' | paste -sd ' ' | sed 's/^/  final state:/; s/$/  (2 COMMITTED, 3 ABORTED, 4 PREPARED, 0 no row)/'
fi

echo
echo "model check: $passed passed, $failed failed"
[ "$failed" -eq 0 ]
