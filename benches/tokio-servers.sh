# The servers and scenarios of tokio.sh and tokio-instructions.sh, sourced
# by both. Needs $TARGET (the cargo target directory).

# The command line of a server by its name: tether-tokio (hyper_echo,
# hyper's upgrade), tether-tokio-accept (the same, the handshake read by
# tether-tokio's Acceptor), tether-tokio=PATH (a hyper_echo binary of
# another build), a peer of benches/peers, or a peer whose socket is a
# Stream and a Sink with "-forward" (its --forward echo), or floor-tokio
# (src/bin/floor_tokio.rs: the least an echo on tokio can do, a bound that
# tables.py does not count among the peers).
tokio_server_cmd() { # name[=path] port threads
    case "$1" in
        tether-tokio=*) echo "${1#*=} --port $2 --threads $3" ;;
        tether-tokio) echo "$TARGET/release/examples/hyper_echo --port $2 --threads $3" ;;
        tether-tokio-accept) echo "$TARGET/release/examples/hyper_echo --port $2 --threads $3 --accept 1" ;;
        floor-tokio) echo "$TARGET/release/floor_tokio --port $2 --threads $3" ;;
        tokio-tungstenite | fastwebsockets | tokio-websockets | yawc | axum)
            echo "$TARGET/peers/release/echo-$1 --port $2 --threads $3" ;;
        tokio-tungstenite-forward | tokio-websockets-forward | yawc-forward | axum-forward)
            echo "$TARGET/peers/release/echo-${1%-forward} --port $2 --threads $3 --forward" ;;
        *) echo "unknown server $1" >&2; return 1 ;;
    esac
}

# A scenario, CONNECTIONSxBYTES with "-deflate" for a compressed echo and
# "-pN" for N messages in flight on each connection, as loadgen echo's
# options: "-c CONNECTIONS -s BYTES [--deflate] [--pipeline N]".
scenario_options() { # scenario
    local shape=${1%%-*}
    local options="-c ${shape%x*} -s ${shape#*x}"
    case "$1" in *-deflate*) options="$options --deflate" ;; esac
    [[ $1 =~ -p([0-9]+)$ ]] && options="$options --pipeline ${BASH_REMATCH[1]}"
    echo "$options"
}
