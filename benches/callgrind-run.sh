# Sourced by instructions.sh and tokio-instructions.sh: one server run
# under valgrind's callgrind, and the figure per message made from two.
#
# Sourcing it sets the traps that stop what it starts, whatever ends the
# run: the script's end, a step that failed under `set -e`, Ctrl-C, TERM
# or HUP. A caller sources it before it makes or starts anything (a
# server started before the traps were set would outlive a run stopped
# then), then sets WORK (a scratch directory, removed on exit) and LOADGEN.
# SERVER_PID is the server under callgrind while one runs, LOAD_PID the
# load generator.
SERVER_PID=""
LOAD_PID=""
WORK=""

# Stops these processes (children of this shell) with TERM, then with
# KILL whatever is still there 60 s later (callgrind writes its counts as
# its program ends, well within that), and reaps them.
callgrind_kill() { # pid...
    [ $# -gt 0 ] || return 0
    kill -TERM "$@" 2>/dev/null || true
    local _
    for _ in $(seq 600); do
        # True while any of them is there: bash reaps its children as
        # they end, so one that ended does not answer.
        kill -0 "$@" 2>/dev/null || break
        sleep 0.1
    done
    kill -KILL "$@" 2>/dev/null || true
    wait "$@" 2>/dev/null || true
}

# The exit trap: a server still under callgrind and a load generator still
# running are stopped by their pids and waited for, and WORK goes. Every
# background job of this shell is stopped too, which covers one started
# in the moment before its pid was kept (a trap runs between any two
# commands). It sees them only if they were started in the script's own
# shell, never in a subshell (`$(...)`, `< <(...)`), whose jobs are its
# own.
callgrind_cleanup() {
    # A second Ctrl-C must not cut the stop short and leave a server
    # behind; callgrind_kill's wait is bounded instead.
    trap '' HUP INT TERM
    # shellcheck disable=SC2046 # pids, one word each
    callgrind_kill $(printf '%s\n' $SERVER_PID $LOAD_PID $(jobs -p) | sort -u)
    SERVER_PID=""
    LOAD_PID=""
    if [ -n "$WORK" ]; then
        rm -rf "$WORK"
    fi
}
trap callgrind_cleanup EXIT
# Without these, TERM and HUP end bash at once, without the exit trap,
# and a Ctrl-C that comes while a command that handles it runs is not an
# exit at all. With them, each is an exit (and its trap) once the
# foreground command ends; the long waits (a server's, the load's) are
# `wait`s, which a signal ends at once.
trap 'exit 129' HUP
trap 'exit 130' INT
trap 'exit 143' TERM

# Starts COMMAND... under callgrind and waits until it logs "listening
# on"; its counts go to $WORK/callgrind.out, its log to $WORK/server.log.
callgrind_start() { # command...
    rm -f "$WORK/callgrind.out"
    # Emptied here, not only by the redirection below, which the new
    # process makes in its own time: the log of the run before says
    # "listening on" too.
    : >"$WORK/server.log"
    : >"$WORK/server.log" # emptied before the child runs, or the wait below reads the last server's lines
    valgrind --tool=callgrind --callgrind-out-file="$WORK/callgrind.out" "$@" >>"$WORK/server.log" 2>&1 &
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
# counts when it ends them). Its output goes to a file, not `$(...)`: it
# clears SERVER_PID, which only this shell can do.
callgrind_stop() {
    if ! kill -0 "$SERVER_PID" 2>/dev/null; then
        echo "the server under callgrind ended before its stop:" >&2
        cat "$WORK/server.log" >&2
        SERVER_PID=""
        return 1
    fi
    callgrind_kill "$SERVER_PID"
    SERVER_PID=""
    for _ in $(seq 100); do
        grep -qE '^(summary|totals):' "$WORK/callgrind.out" 2>/dev/null && break
        sleep 0.1
    done
    grep -E '^(summary|totals):' "$WORK/callgrind.out" | head -1 | awk '{print $2}'
}

# Runs COMMAND... (a load generator) with its output in $WORK/load.out. In
# the background of this shell, waited for: a signal ends the wait at once
# (it would wait for a command in the foreground to end), and the exit
# trap stops it by its pid. Fails as the command fails.
run_load() { # command...
    "$@" >"$WORK/load.out" &
    LOAD_PID=$!
    local status=0
    wait "$LOAD_PID" || status=$?
    LOAD_PID=""
    return "$status"
}

# Runs `loadgen echo` against PORT; sets MESSAGES to the messages echoed.
echo_load() { # port seconds [loadgen options...]
    local port=$1 seconds=$2
    shift 2
    run_load "$LOADGEN" echo --addr "127.0.0.1:$port" -d "$seconds" \
        --warmup 0 --connect-timeout 120 "$@"
    MESSAGES=$(grep -oE '^echo .*: ([0-9]+) messages' "$WORK/load.out" | grep -oE '[0-9]+ messages' | grep -oE '[0-9]+')
}

# (instructions of the loaded run - those of the idle run) / messages.
per_message() { # total idle messages
    echo $((($1 - $2) / ($3 > 0 ? $3 : 1)))
}
