#!/usr/bin/env bash
# check.sh -- model-check model/publication.pml with spin, exhaustively.
#
#   bash model/check.sh            (no arguments, any working directory)
#
# Variants and the outcome each one must have:
#   v2            the V2 rule                      -> errors: 0 (full search, no
#                                                     partial-order reduction)
#   old-rule      -DOLD_RULE                       -> a counterexample; also the
#                                                     stale-reset scenario of the
#                                                     ADR (-DNO_FOREIGN, P2 only)
#   reset-window  -DRESET_WINDOW                   -> a counterexample to P3
#   fence-window  -DFENCE_WINDOW (the soft fence)  -> a counterexample, while P3
#                                                     and P5 still hold
# For a failing variant the script also lists which properties fail: it re-runs
# pan with the properties found so far switched off (-DPROPS=<mask>) until a run
# finds no error (that last run is a complete search), and it replays a short
# trail of the first violation (pan -i, then spin -t).
#
# Everything is built and run in a temporary directory, removed at exit.  The
# variants run in two parallel lanes (2 cores); the report is printed in order.
# Exit status 0 only if every variant has the expected outcome.
set -euo pipefail

cd "$(dirname "$0")"
PML="$(pwd)/publication.pml"

die() {
    echo "check.sh: FAIL: $*" >&2
    exit 1
}

[[ -f "$PML" ]] || die "$PML not found"
command -v spin >/dev/null || die "spin not found on PATH"
command -v gcc >/dev/null || die "gcc not found on PATH"

WORK="$(mktemp -d "${TMPDIR:-/tmp}/perago-model.XXXXXX")"
LANES=()
cleanup() {
    local p
    for p in "${LANES[@]}"; do kill "$p" 2>/dev/null || true; done
    wait 2>/dev/null || true
    rm -rf "$WORK"
}
trap cleanup EXIT

# pan: safety properties only (assertions + invalid end states), at most
# 12 GiB, 2^26 hash slots, depth limit far above the deepest path (~350),
# and a wall-clock cap per run so that nothing can hang.
CFLAGS_PAN=(-O2 -w -DSAFETY -DVECTORSZ=512 -DMEMLIM=12288)
RUN_PAN=(-m1000000 -w26)
PAN_TIMEOUT=600

ALL_PROPS=31
prop_bit() {    # assertion name -> PROPS bit
    case "$1" in
        P1_*) echo 1 ;;
        P2_*) echo 2 ;;
        P3_*) echo 4 ;;
        P4_*) echo 8 ;;
        P5_*) echo 16 ;;
        *) echo 0 ;;
    esac
}
prop_names() {  # PROPS mask -> "P1 P3 ..."
    local mask=$1 out="" k
    for k in 1 2 3 4 5; do
        if (( mask & (1 << (k - 1)) )); then out+="P$k "; fi
    done
    echo "${out% }"
}

# build <dir> <extra gcc flags, comma separated or ""> <spin -D options...>
build() {
    local dir=$1 extra=$2
    shift 2
    local -a xflags=()
    [[ -z "$extra" ]] || IFS=, read -r -a xflags <<<"$extra"
    mkdir -p "$dir"
    cp "$PML" "$dir/publication.pml"
    (cd "$dir" && spin -a "$@" publication.pml >spin.out 2>&1) ||
        { cat "$dir/spin.out" >&2; die "spin -a $* failed"; }
    (cd "$dir" && gcc "${CFLAGS_PAN[@]}" "${xflags[@]}" -o pan pan.c >gcc.out 2>&1) ||
        { cat "$dir/gcc.out" >&2; die "gcc failed for spin options: $*"; }
}

# run_pan <dir> [pan options...]: run pan, parse its report into
# ERRORS STATES TRANSITIONS DEPTH SECS ASSERTION; reject incomplete searches.
run_pan() {
    local dir=$1
    shift
    local t0 t1 out rc=0
    t0=$(date +%s.%N)
    (cd "$dir" && timeout "$PAN_TIMEOUT" ./pan "${RUN_PAN[@]}" "$@" >pan.out 2>&1) || rc=$?
    t1=$(date +%s.%N)
    [[ $rc != 124 ]] || die "pan in $dir ran longer than ${PAN_TIMEOUT}s"
    out="$dir/pan.out"
    SECS=$(awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.1f", b - a }')
    grep -q '^State-vector' "$out" || { cat "$out" >&2; die "pan did not report (exit $rc)"; }
    if grep -qiE 'max search depth too small|out of memory|reached -DMEMLIM|VECTORSZ is too small|aborting' "$out"; then
        cat "$out" >&2
        die "pan search truncated (depth / memory / vector size), see above"
    fi
    grep -q '^Full statespace search' "$out" || die "pan did not do a full (exhaustive) search"
    ERRORS=$(sed -n 's/.*errors: \([0-9][0-9]*\).*/\1/p' "$out" | head -1)
    STATES=$(awk '/states, stored/ { print $1; exit }' "$out")
    TRANSITIONS=$(awk '/transitions \(= stored\+matched\)/ { print $1; exit }' "$out")
    DEPTH=$(sed -n 's/.*depth reached \([0-9][0-9]*\).*/\1/p' "$out" | head -1)
    ASSERTION=$(sed -n 's/^pan:[0-9]*: assertion violated \([A-Za-z0-9_]*\).*/\1/p' "$out" | head -1)
    [[ -n "$ERRORS" && -n "$STATES" && -n "$TRANSITIONS" && -n "$DEPTH" ]] ||
        { cat "$out" >&2; die "could not parse pan output"; }
    if [[ "$ERRORS" == 0 ]] && grep -qi 'search not completed' "$out"; then
        die "pan reports 'search not completed' without an error"
    fi
    if [[ "$ERRORS" != 0 && -z "$ASSERTION" ]]; then
        grep -m3 '^pan:' "$out" >&2 || true
        die "pan found an error that is not a property assertion (model bug?) in $dir"
    fi
    if [[ "$ERRORS" != 0 && "$(prop_bit "$ASSERTION")" == 0 ]]; then
        die "pan violated an internal assertion of the model: $ASSERTION"
    fi
}

# show_trail <dir> <spin -D options...>: replay publication.pml.trail, print
# the protocol events (the printf lines of the model), at most 40 lines.
show_trail() {
    local dir=$1
    shift
    [[ -f "$dir/publication.pml.trail" ]] || die "no trail written in $dir"
    (cd "$dir" && spin -T -t "$@" publication.pml 2>&1) |
        grep -E '^  [a-z]|failed assertion' |
        sed -e 's/^spin: text of failed assertion: /  >> violated: /' -e 's/^/    /' |
        head -40
}

# analyse <name> <spin -D options...>: peel off violated properties.
# Sets VIOLATED and HOLDS (masks), FIRST (first assertion name), FIRSTDIR (the
# all-properties build, compiled with -DREACH for pan -i) and FINAL_* (the last,
# complete run).
analyse() {
    local name=$1
    shift
    local mask=$ALL_PROPS dir bit
    VIOLATED=0
    FIRST=""
    FIRSTDIR=""
    while (( mask != 0 )); do
        dir="$WORK/$name-props$mask"
        if (( mask == ALL_PROPS )); then
            build "$dir" -DREACH "$@" -DPROPS=$mask   # its trail is shortened with pan -i
        else
            build "$dir" "" "$@" -DPROPS=$mask
        fi
        run_pan "$dir"
        if [[ "$ERRORS" == 0 ]]; then
            break
        fi
        bit=$(prop_bit "$ASSERTION")
        (( mask & bit )) || die "$name: $ASSERTION fired although it is switched off"
        if [[ -z "$FIRST" ]]; then
            FIRST=$ASSERTION
            FIRSTDIR=$dir
        fi
        VIOLATED=$(( VIOLATED | bit ))
        mask=$(( mask & ~bit ))
    done
    HOLDS=$mask
    FINAL_STATES=$STATES FINAL_TRANSITIONS=$TRANSITIONS FINAL_DEPTH=$DEPTH FINAL_SECS=$SECS
}

# short_trail <dir> <spin -D options...>: iterative search (pan -i) for a
# shorter counterexample in an existing -DREACH build, then replay it.
short_trail() {
    local dir=$1
    shift
    run_pan "$dir" -i
    [[ "$ERRORS" != 0 ]] || die "the iterative search in $dir lost the counterexample"
    show_trail "$dir" "$@"
}

holds_line() {
    local holds
    holds=$(prop_names "$HOLDS")
    echo "  violated: $(prop_names "$VIOLATED"); hold: ${holds:-none} (complete search without them: $FINAL_STATES states, $FINAL_TRANSITIONS transitions, depth $FINAL_DEPTH, ${FINAL_SECS}s)"
}

# ---------------------------------------------------------------- variants

check_v2() {
    build "$WORK/v2" -DNOREDUCE -DPROPS=$ALL_PROPS
    run_pan "$WORK/v2"
    if [[ "$ERRORS" != 0 ]]; then
        show_trail "$WORK/v2" -DPROPS=$ALL_PROPS
        die "model v2: $ERRORS error(s), first: $ASSERTION (trail above)"
    fi
    echo "model v2: OK, $STATES states, $TRANSITIONS transitions, depth $DEPTH, ${SECS}s"
    echo "  (exhaustive, no partial-order reduction, no bitstate; P1 P2 P3 P4 P5 asserted)"
}

check_old_rule() {
    analyse old-rule -DOLD_RULE
    [[ -n "$FIRST" ]] || die "model old-rule: no error found: the checker could not fail"
    echo "model old-rule: counterexample found as expected ($FIRST)"
    holds_line
    echo "  short trail (all properties):"
    short_trail "$FIRSTDIR" -DOLD_RULE -DPROPS=$ALL_PROPS
    echo "  the ADR scenario (stale reset over a COMPLETED publication; no foreign writer, P2 only):"
    build "$WORK/old-rule-adr" -DREACH -DOLD_RULE -DNO_FOREIGN -DPROPS=2
    run_pan "$WORK/old-rule-adr"
    [[ "$ERRORS" != 0 ]] || die "model old-rule: the stale reset scenario (P2, no foreign writer) was not found"
    short_trail "$WORK/old-rule-adr" -DOLD_RULE -DNO_FOREIGN -DPROPS=2
}

check_reset_window() {
    analyse reset-window -DRESET_WINDOW
    [[ -n "$FIRST" ]] || die "model reset-window: no error found: the checker could not fail"
    (( VIOLATED & 4 )) || die "model reset-window: P3 (no foreign commit discarded) was not violated"
    echo "model reset-window: counterexample found as expected (lakeFS hard_reset has no precondition) ($FIRST)"
    holds_line
    echo "  short trail:"
    short_trail "$FIRSTDIR" -DRESET_WINDOW -DPROPS=$ALL_PROPS
}

check_fence_window() {
    analyse fence-window -DFENCE_WINDOW
    [[ -n "$FIRST" ]] || die "model fence-window: no error found: the checker could not fail"
    (( HOLDS & 4 )) || die "model fence-window: P3 violated: the soft fence must never discard a foreign commit"
    (( HOLDS & 16 )) || die "model fence-window: P5 violated: the soft fence must never discard an accepted output"
    echo "model fence-window: counterexample found as expected (soft fence: the lease can expire between the fence read and the write) ($FIRST)"
    holds_line
    echo "  short trail (all properties):"
    short_trail "$FIRSTDIR" -DFENCE_WINDOW -DPROPS=$ALL_PROPS
}

T_START=$(date +%s)
echo "$(spin -V 2>&1 | head -1); model: N=3 attempts, at most 1 foreign commit, a crash point between every two worker steps"

# two lanes of about equal length; each section writes its own report file
( check_fence_window >"$WORK/4.out" 2>&1 ) &
LANES+=($!)
( check_v2 >"$WORK/1.out" 2>&1; check_old_rule >"$WORK/2.out" 2>&1
  check_reset_window >"$WORK/3.out" 2>&1 ) &
LANES+=($!)
rc=0
for p in "${LANES[@]}"; do wait "$p" || rc=1; done
LANES=()

for k in 1 2 3 4; do
    if [[ -f "$WORK/$k.out" ]]; then cat "$WORK/$k.out"; fi
done
if (( rc != 0 )); then
    echo "check.sh: FAILED (see the messages above)" >&2
    exit 1
fi
echo "all checks passed in $(( $(date +%s) - T_START ))s"
