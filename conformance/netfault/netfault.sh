#!/usr/bin/env bash
# Nothing lost when the network fails: tether nodes, their bus and their
# clients on hosts of their own (network namespaces), a seeded nemesis
# (partitions, one-way partitions, paused processes, loss, delay,
# reordering, duplication, a node killed while cut off, the bus
# restarted, the master killed behind Sentinel), and a checker over the recorded history (README.md here).
#
#   conformance/netfault/netfault.sh [--buses "redis redis-cluster redis-sentinel nats-cluster rabbitmq-cluster"]
#                                    [--seconds 45] [--seed N] [--minutes M] [--keep DIR]
#
# Buses: redis, redis-cluster, redis-sentinel, nats, nats-cluster, rabbitmq-cluster
# (buses.py, sentinel.py, buses_rabbitmq.py). Each bus's
# run has hosts of its own, and the runs go side by side. --minutes M
# runs a soak: M minutes of faults per bus (the histories and summaries
# kept in --keep DIR). The CI run is short: --seconds per bus, a fresh
# seed each time (printed, so a failure can be repeated with --seed),
# then a run with an injected fault that deletes acknowledged events
# behind the hub's back, which the checker must catch, and the checker's
# and the subscribers' own cases (checker_test.py, subscribers_test.py).
#
# Environment:
#   TETHER_BIN   the tether binary (default: cargo build --release -p tether)
#   NATS_SERVER  the nats-server binary (default: nats-server on the PATH)
#   TETHER_FOLLOW  tether-client's `follow` example, one more subscriber per
#                topic (default: target/release/examples/follow, built if
#                missing); the browser client under Node is one more when
#                `node` is on the PATH
#   PYTHON       the interpreter for the venv (default: python3; >= 3.11)
#
# Needs root (namespaces, iptables, nftables). Installs haproxy, redis,
# iptables, nftables, curl, faketime (libfaketime: one node's clock is
# set off), openssl (the Sentinel run's TLS certificates),
# libnetfilter-queue-dev and, for rabbitmq-cluster, rabbitmq-server when
# missing (apt-get),
# and Python's websockets and NetfilterQueue into .venv beside this file.
# Prints "faults: N passed, M failed" last.
set -uo pipefail

WEBSOCKETS_VERSION=17.4
NETFILTERQUEUE_VERSION=1.1.0

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
root="$(cd "$here/../.." && pwd)"
venv="$here/.venv"
python="${PYTHON:-python3}"
buses="redis redis-cluster redis-sentinel nats-cluster rabbitmq-cluster"
seconds=45
minutes=""
seed=""
keep=""
while (($#)); do
    case "$1" in
        --buses) buses="$2"; shift 2 ;;
        --seconds) seconds="$2"; shift 2 ;;
        --minutes) minutes="$2"; shift 2 ;;
        --seed) seed="$2"; shift 2 ;;
        --keep) keep="$2"; shift 2 ;;
        *) echo "netfault.sh: unknown argument $1" >&2; exit 2 ;;
    esac
done

passed=0
failed=0
say() { printf 'faults: %s\n' "$*"; }
give_up() {
    say "$*"
    echo "faults: $passed passed, $((failed + 1)) failed"
    exit 1
}

[[ $(id -u) == 0 ]] || give_up "needs root (network namespaces)"
work="$(mktemp -d "${TMPDIR:-/tmp}/tether-netfault.XXXXXX")"
# Namespaces of this run only: the prefix carries the shell's pid (a
# bus's run adds its index; interface names stay under 15 bytes).
prefix="tnf$(($$ % 10000))"
cleanup() {
    local p
    for p in "$prefix"{0..9} "${prefix}x"; do
        python3 -c "import sys; sys.path.insert(0, '$here'); import topology; topology.teardown('$p')" \
            2>/dev/null || true
    done
    if [[ -n "$keep" ]]; then
        mkdir -p "$keep" && cp -r "$work"/. "$keep"/
    fi
    rm -rf "$work"
}
trap cleanup EXIT
trap 'say interrupted; exit 130' INT
trap 'say interrupted; exit 143' TERM

# --- what it needs ------------------------------------------------------------
. "$root/conformance/proxy/prepare.sh"
install_missing haproxy=haproxy redis-server=redis-server redis-cli=redis-tools iptables=iptables \
    nft=nftables curl=curl faketime=faketime openssl=openssl
if [[ ! -e /usr/include/libnetfilter_queue/libnetfilter_queue.h ]]; then
    install_missing __none__=libnetfilter-queue-dev
fi
if [[ " $buses " == *" rabbitmq-cluster "* && ! -x /usr/lib/rabbitmq/bin/rabbitmq-server ]]; then
    install_missing __none__=rabbitmq-server
fi
find_tether
stamp="websockets==$WEBSOCKETS_VERSION NetfilterQueue==$NETFILTERQUEUE_VERSION $("$python" -c 'import sys; print(sys.version.split()[0])')"
if [[ "$(cat "$venv/.tether-stamp" 2>/dev/null)" != "$stamp" ]]; then
    say "creating $venv ($stamp)"
    rm -rf "$venv"
    "$python" -m venv "$venv" \
        && "$venv/bin/python" -m pip install --quiet --disable-pip-version-check \
            "websockets==$WEBSOCKETS_VERSION" "NetfilterQueue==$NETFILTERQUEUE_VERSION" \
        && printf '%s\n' "$stamp" >"$venv/.tether-stamp" \
        || give_up "could not make the venv at $venv"
fi
nats_server="${NATS_SERVER:-$(command -v nats-server || true)}"
follow="${TETHER_FOLLOW:-${CARGO_TARGET_DIR:-$root/target}/release/examples/follow}"
if [[ ! -x "$follow" ]]; then
    say "building: cargo build --release -p tether-client --example follow"
    (cd "$root" && cargo build --release -p tether-client --example follow) || give_up "cargo build failed"
fi
clients=(--follow "$follow")
node="$(command -v node || true)"
if [[ -n "$node" ]]; then
    clients+=(--node "$node")
else
    say "no node on the PATH: the browser client is left out"
fi

# Adds up a run's ok / FAIL lines, shown as they come.
tally() {
    local line
    while IFS= read -r line; do
        case "$line" in
            ok\ *) passed=$((passed + 1)); printf 'ok   %s\n' "${line#ok }" ;;
            FAIL\ *) failed=$((failed + 1)); printf 'FAIL %s\n' "${line#FAIL }" ;;
            *) printf '%s\n' "$line" ;;
        esac
    done <"$1"
}

run_bus() {
    local bus=$1 index=$2 out="$work/$bus.out"
    local args=(--tether "$bin" --python "$venv/bin/python" --work "$work/$bus" --bus "$bus" --prefix "$prefix$index"
        "${clients[@]}")
    [[ -n "$seed" ]] && args+=(--seed "$seed")
    if [[ -n "$minutes" ]]; then
        args+=(--seconds "$((minutes * 60))")
    else
        args+=(--seconds "$seconds")
    fi
    if [[ $bus == nats* ]]; then
        [[ -x "$nats_server" ]] || { echo "FAIL $bus: no nats-server (set NATS_SERVER)" >"$out"; return; }
        args+=(--nats-server "$nats_server")
    fi
    "$venv/bin/python" "$here/run.py" "${args[@]}" >"$out" 2>&1
    local status=$?
    # A run that failed without saying so (a crash: its traceback is in
    # the output) is a failure too.
    if [[ $status -ne 0 ]] && ! grep -q '^FAIL ' "$out"; then
        echo "FAIL $bus: run.py exited with status $status" >>"$out"
    fi
}

run_injected() {
    # The cuts outlast the bridge's command timeout (5 s), so the cut node
    # reconnects and catches up from the topics' streams, where the
    # events it never had are gone. HAProxy checks /healthz here: with
    # /readyz?shared=1 it would move the cut node's subscribers to the other node,
    # which gives them the events before they are deleted.
    "$venv/bin/python" "$here/run.py" --tether "$bin" --python "$venv/bin/python" --work "$work/injected" \
        --bus redis --prefix "${prefix}x" --seconds 30 --kinds partition-node-bus --fault-seconds 8,10 \
        --drop-acknowledged --lb-check healthz \
        ${seed:+--seed "$seed"} >"$work/injected.out" 2>&1
}

index=0
runs=()
# The run with an injected loss (CI's run, not a soak) goes side by side
# with the buses' runs, on hosts of its own (its own prefix): the runs
# spend most of their time waiting out the schedule.
if [[ -z "$minutes" ]]; then
    run_injected &
    runs+=($!)
fi
for bus in $buses; do
    run_bus "$bus" "$index" &
    runs+=($!)
    index=$((index + 1))
done
for pid in "${runs[@]}"; do wait "$pid"; done
for bus in $buses; do
    say "--- $bus: seeded faults while publishing and subscribing through HAProxy"
    tally "$work/$bus.out"
done

if [[ -z "$minutes" ]]; then
    say "--- the checker catches what a run loses: acknowledged events deleted from Redis behind the hub's back"
    out="$work/injected.out"
    # Its FAIL lines are what it must print: shown as "wanted", so that a
    # search of the logs for failures does not name them.
    sed -e 's/^FAIL /wanted FAIL: /' -e 's/^/    /' "$out"
    if grep -q '^FAIL redis: no lost: ' "$out"; then
        passed=$((passed + 1))
        say "ok   the injected loss was reported as lost"
    else
        failed=$((failed + 1))
        say "FAIL the injected loss was not reported"
    fi
    say "--- the checker's own cases"
    "$python" "$here/checker_test.py" >"$work/checker.out" 2>&1
    sed 's/^/    /' "$work/checker.out"
    if grep -qE '^netfault-checker: [0-9]+ passed, 0 failed' "$work/checker.out"; then
        passed=$((passed + 1))
    else
        failed=$((failed + 1))
    fi
    say "--- the subscribers' own cases: the cursor, a multi-topic stream's lines, a multiplexed socket against a scripted /ws"
    "$venv/bin/python" "$here/subscribers_test.py" >"$work/subscribers.out" 2>&1
    sed 's/^/    /' "$work/subscribers.out"
    if grep -qE '^netfault-subscribers: [0-9]+ passed, 0 failed' "$work/subscribers.out"; then
        passed=$((passed + 1))
    else
        failed=$((failed + 1))
    fi
fi

if ((failed)); then
    for log in "$work"/*/n1.log "$work"/*/n2.log "$work"/*/workload.log; do
        [[ -s "$log" ]] || continue
        say "$log:"
        tail -15 "$log" | sed 's/^/    /'
    done
fi
echo "faults: $passed passed, $failed failed"
[[ $failed == 0 ]]
