# Sourced by compare.sh and tokio.sh: uWebSockets' load_test (built by
# the user from its own source; its path in UWS_LOAD_TEST) as the
# generator for one echo scenario. load_test prints the rate of the last
# LIBUS_TIMEOUT_GRANULARITY (4) seconds every 4 seconds; the first report
# is the warm-up, the next ones (at least one, about DURATION seconds'
# worth) are measured, with the server's and its own CPU time from /proc
# over the same span (and the server's system time alone). Writes a JSON line as the load generator does (with
# generator=load_test, and the caller's EXTRA, a JSON fragment such as
# `"threads":"0",`), to $OUT. The caller sets DURATION, UWS_LOAD_TEST,
# LOADGEN_PIN (an array: the command that pins the generator), port,
# SERVER_PID, OUT and failures.
run_load_test() { # name round connections size [extra]
    local name=$1 round=$2 conns=$3 size=$4 extra=${5:-} reports=$(((DURATION + 3) / 4)) seen=0 sum=0
    local tick start_server_cpu start_server_sys start_lt_cpu lt_pid line
    tick=$(getconf CLK_TCK)
    cpu_ticks() { awk '{print $14 + $15}' "/proc/$1/stat" 2>/dev/null || echo 0; }
    sys_ticks() { awk '{print $15}' "/proc/$1/stat" 2>/dev/null || echo 0; }
    [ "$reports" -ge 1 ] || reports=1
    coproc LT { exec "${LOADGEN_PIN[@]}" stdbuf -oL "$UWS_LOAD_TEST" "$conns" 127.0.0.1 "$port" 0 0 "$size" 2>&1; }
    lt_pid=$LT_PID
    while IFS= read -r -t 60 line <&"${LT[0]}"; do
        case "$line" in
            Msg/sec:*)
                if [ "$seen" -eq 0 ]; then
                    start_server_cpu=$(cpu_ticks "$SERVER_PID")
                    start_server_sys=$(sys_ticks "$SERVER_PID")
                    start_lt_cpu=$(cpu_ticks "$lt_pid")
                else
                    sum=$(awk -v a="$sum" -v b="${line#Msg/sec: }" 'BEGIN {printf "%.0f", a + b * 4}')
                fi
                seen=$((seen + 1))
                if [ "$seen" -gt "$reports" ]; then
                    local server_cpu server_sys lt_cpu wall=$((reports * 4))
                    server_sys=$(awk -v a="$start_server_sys" -v b="$(sys_ticks "$SERVER_PID")" -v t="$tick" 'BEGIN {printf "%.2f", (b - a) / t}')
                    server_cpu=$(awk -v a="$start_server_cpu" -v b="$(cpu_ticks "$SERVER_PID")" -v t="$tick" 'BEGIN {printf "%.2f", (b - a) / t}')
                    lt_cpu=$(awk -v a="$start_lt_cpu" -v b="$(cpu_ticks "$lt_pid")" -v t="$tick" 'BEGIN {printf "%.2f", (b - a) / t}')
                    kill "$lt_pid" 2>/dev/null || true
                    wait "$lt_pid" 2>/dev/null || true
                    awk -v n="$name" -v r="$round" -v c="$conns" -v s="$size" -v m="$sum" -v w="$wall" \
                        -v sc="$server_cpu" -v ss="$server_sys" -v lc="$lt_cpu" -v x="$extra" 'BEGIN {
                        printf "{\"mode\":\"echo\",\"generator\":\"load_test\",\"server\":\"%s\",\"round\":\"%s\",%s", n, r, x
                        printf "\"connections\":%d,\"size\":%d,\"messages\":%d,\"wall_s\":%d,", c, s, m, w
                        printf "\"msg_per_s\":%.0f,\"server_cpu_s\":%s,\"server_system_s\":%s,\"loadgen_cpu_s\":%s,", m / w, sc, ss, lc
                        printf "\"msg_per_server_cpu_s\":%.0f,\"msg_per_loadgen_cpu_s\":%.0f,\"problems\":%d}\n",
                            (sc > 0 ? m / sc : 0), (lc > 0 ? m / lc : 0), (m > 0 ? 0 : 1) }' >>"$OUT"
                    echo "   $name (load_test): $conns conns x $size B: $((sum / wall)) msg/s, server CPU ${server_cpu}s, load_test CPU ${lt_cpu}s over ${wall}s"
                    return 0
                fi
                ;;
        esac
    done
    kill "$lt_pid" 2>/dev/null || true
    wait "$lt_pid" 2>/dev/null || true
    failures=$((failures + 1))
    echo "   FAILED: load_test against $name ($conns x $size B) reported $seen times" >&2
}
