# Sourced by instructions.sh and tokio-instructions.sh: one server run
# under valgrind's callgrind, and the figure per message made from two.
# The caller sets WORK (a scratch directory) and LOADGEN, and removes
# WORK on exit; SERVER_PID is the server under callgrind, if one runs.
SERVER_PID=""

# Starts COMMAND... under callgrind and waits until it logs "listening
# on"; its counts go to $WORK/callgrind.out, its log to $WORK/server.log.
callgrind_start() { # command...
    rm -f "$WORK/callgrind.out"
    valgrind --tool=callgrind --callgrind-out-file="$WORK/callgrind.out" "$@" >"$WORK/server.log" 2>&1 &
    SERVER_PID=$!
    for _ in $(seq 600); do
        grep -q "listening on" "$WORK/server.log" && break
        # A server that exited (a bad option, a port taken) will not listen.
        kill -0 "$SERVER_PID" 2>/dev/null || break
        sleep 0.1
    done
    grep -q "listening on" "$WORK/server.log" || { cat "$WORK/server.log" >&2; return 1; }
}

# Stops the server and prints the instructions callgrind counted. TERM:
# a background job of a script ignores INT; tether stops gracefully on
# TERM, and the peers keep the default action (callgrind writes its
# counts when it ends them).
callgrind_stop() {
    kill -TERM "$SERVER_PID"
    wait "$SERVER_PID" || true
    SERVER_PID=""
    for _ in $(seq 100); do
        grep -qE '^(summary|totals):' "$WORK/callgrind.out" 2>/dev/null && break
        sleep 0.1
    done
    grep -E '^(summary|totals):' "$WORK/callgrind.out" | head -1 | awk '{print $2}'
}

# Runs `loadgen echo` against PORT and prints the messages echoed.
echo_load() { # port seconds [loadgen options...]
    local port=$1 seconds=$2
    shift 2
    "$LOADGEN" echo --addr "127.0.0.1:$port" -d "$seconds" \
        --warmup 0 --connect-timeout 120 "$@" >"$WORK/load.out"
    grep -oE '^echo .*: ([0-9]+) messages' "$WORK/load.out" | grep -oE '[0-9]+ messages' | grep -oE '[0-9]+'
}

# (instructions of the loaded run - those of the idle run) / messages.
per_message() { # total idle messages
    echo $((($1 - $2) / ($3 > 0 ? $3 : 1)))
}

# The exit trap of the scripts that source this: whatever ended the run (a
# step that failed, Ctrl-C, TERM), a server still under callgrind is
# stopped by its pid and waited for. It sees SERVER_PID only if the server
# was started in the script's own shell, never in a subshell (`$(...)`,
# `< <(...)`).
callgrind_cleanup() {
    if [ -n "$SERVER_PID" ]; then
        kill -TERM "$SERVER_PID" 2>/dev/null || true
        wait "$SERVER_PID" 2>/dev/null || true
        SERVER_PID=""
    fi
    rm -rf "$WORK"
}
