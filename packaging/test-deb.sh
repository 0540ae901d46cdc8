#!/usr/bin/env bash
# The Debian package, installed and run as systemd would run it, then
# purged. Run by .ci/run as root after the release build; prints
# "deb: N passed, M failed".
#
#   sudo bash packaging/test-deb.sh        (TETHER_BIN: the binary built by packaging/build.sh)
#
# No systemd runs here (nor in CI's container), so the unit is checked
# offline (systemd-analyze verify, and security --offline for its
# exposure score) and its ExecStart is run the way the unit would run it:
# as a user of no account (DynamicUser), with the state directory made and
# given to it (StateDirectory), in it (WorkingDirectory), with the unit's
# LimitNOFILE, no capabilities and no new privileges (setpriv). What this
# does not exercise: systemd's own sandbox (ProtectSystem, the system call
# filter and the rest are applied by systemd only).
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
# shellcheck source=tally.sh
source "$root/packaging/tally.sh"

if [ "$(id -u)" -ne 0 ]; then
    echo "test-deb.sh: needs root (dpkg -i)"
    echo "deb: 0 passed, 1 failed"
    exit 1
fi
command -v cargo-deb >/dev/null || cargo install cargo-deb --locked --quiet
if ! command -v systemd-analyze >/dev/null || ! command -v setpriv >/dev/null; then
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq systemd util-linux >/dev/null
fi

work=$(mktemp -d)
server=
cleanup() {
    [ -n "$server" ] && kill -9 "$server" 2>/dev/null || true
    dpkg --purge tether >/dev/null 2>&1 || true
    rm -rf "$work"
}
trap cleanup EXIT
# A package of an earlier run that stopped half way.
dpkg --purge tether >/dev/null 2>&1 || true

before=$(sha256sum "$TETHER_BIN" | cut -d' ' -f1)
deb=$(bash packaging/deb.sh "$work/out" | tail -1)
echo "built $deb"
check "building the package leaves the tested binary as it was" \
    test "$(sha256sum "$TETHER_BIN" | cut -d' ' -f1)" = "$before"
dpkg-deb -c "$deb" | awk '{print $6}' >"$work/contents"
for path in ./usr/bin/tether ./etc/tether/tether.toml; do
    check "the package holds $path" grep -qx "$path" "$work/contents"
done
unit_path=$(grep -E '^\./(usr/)?lib/systemd/system/tether\.service$' "$work/contents" | sed 's/^\.//')
check "the package holds the unit (${unit_path:-none})" test -n "$unit_path"
check "/etc/tether/tether.toml is a conffile" \
    sh -c "dpkg-deb --ctrl-tarfile '$deb' | tar -xO ./conffiles | grep -qx /etc/tether/tether.toml"

DEBIAN_FRONTEND=noninteractive dpkg -i "$deb" >"$work/dpkg-i.log" 2>&1 || { cat "$work/dpkg-i.log"; bad "dpkg -i"; finish deb; exit 1; }
ok "dpkg -i"
check "/usr/bin/tether is the binary built" \
    test "$(sha256sum /usr/bin/tether | cut -d' ' -f1)" = "$before"
check "tether check-config accepts /etc/tether/tether.toml" tether check-config /etc/tether/tether.toml
# Every option the file shows commented out is one tether knows, with a
# value of the right type.
awk '/^# [a-z0-9-]+ = / { sub(/^# /, ""); split($0, kv, " = "); if (!(kv[1] in seen)) { seen[kv[1]] = 1; print } }
     /^[a-z0-9-]+ = / { split($0, kv, " = "); seen[kv[1]] = 1 }' /etc/tether/tether.toml >"$work/commented.toml"
# check-config reads the files the options name (a start would): the
# example's certificate, key and secret are made in the work directory and
# the file points there instead of /etc/tether.
command -v openssl >/dev/null || { apt-get update -qq; DEBIAN_FRONTEND=noninteractive apt-get install -y -qq openssl; }
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 2 -subj /CN=localhost \
    -keyout "$work/privkey.pem" -out "$work/fullchain.pem" 2>/dev/null
head -c 32 /dev/urandom | od -An -tx1 | tr -d ' \n' >"$work/jwt.secret"
sed -i -e "s|/etc/tether/tls/fullchain.pem|$work/fullchain.pem|" -e "s|/etc/tether/tls/privkey.pem|$work/privkey.pem|" \
    -e "s|/etc/tether/jwt.secret|$work/jwt.secret|" "$work/commented.toml"
check "tether check-config accepts the file's commented options ($(wc -l <"$work/commented.toml"))" \
    tether check-config "$work/commented.toml"
check "systemd-analyze verify $unit_path" systemd-analyze verify "$unit_path"
check "systemd-analyze security --offline: exposure at most 2.0" \
    sh -c "systemd-analyze security --offline=yes --threshold=20 '$unit_path' >'$work/security.log' 2>&1 || { tail -3 '$work/security.log'; exit 1; }"
tail -1 "$work/security.log"
unit() { sed -n "s/^$1=//p" "$unit_path" | tail -1; }
for want in DynamicUser=yes StateDirectory=tether ProtectSystem=strict ProtectHome=yes NoNewPrivileges=yes \
    PrivateTmp=yes CapabilityBoundingSet= Restart=on-failure KillSignal=SIGTERM; do
    check "the unit says $want" grep -qx "$want" "$unit_path"
done
stop_timeout=$(unit TimeoutStopSec)
shutdown_timeout=$(sed -n 's/^shutdown-timeout = //p' /etc/tether/tether.toml)
check "TimeoutStopSec ($stop_timeout) is above the shutdown timeout ($shutdown_timeout)" \
    test "${stop_timeout%s}" -gt "$shutdown_timeout"
check "ExecReload sends SIGHUP" test "$(unit ExecReload)" = '/bin/kill -HUP $MAINPID'

# The unit's ExecStart, run as the unit would run it.
exec_start=$(unit ExecStart)
read -r -a argv <<<"$exec_start"
state=/var/lib/$(unit StateDirectory)
uid=61934
mkdir -p "$state"
chown "$uid:$uid" "$state"
chmod "$(unit StateDirectoryMode)" "$state"
port=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
nofile=$(unit LimitNOFILE)
# Raising the hard limit needs CAP_SYS_RESOURCE, which a container's root
# may lack: then the limit this shell has.
if ! prlimit --nofile="$nofile:$nofile" -- true 2>/dev/null; then
    echo "note: LimitNOFILE=$nofile cannot be set here; running with $(ulimit -Hn)"
    nofile=$(ulimit -Hn)
fi
# TETHER_PORT as an EnvironmentFile or drop-in would give it, so that the
# test takes a free port; everything else comes from the packaged file.
(cd "$state" && exec env -i PATH=/usr/bin:/bin TETHER_PORT="$port" \
    prlimit --nofile="$nofile:$nofile" -- \
    setpriv --reuid="$uid" --regid="$uid" --clear-groups --no-new-privs --inh-caps=-all --bounding-set=-all \
    "${argv[@]}") >"$work/server.log" 2>&1 &
server=$!
up=
for _ in $(seq 100); do
    if curl -fsS "http://127.0.0.1:$port/healthz" >/dev/null 2>&1; then up=1; break; fi
    kill -0 "$server" 2>/dev/null || break
    sleep 0.1
done
check "ExecStart as uid $uid serves /healthz" test -n "$up"
check "it runs as uid $uid" test "$(stat -c %u "/proc/$server" 2>/dev/null)" = "$uid"
check "the browser client is served (--app hub)" \
    sh -c "curl -fsS 'http://127.0.0.1:$port/tether-client.js' | head -c 200 | grep -q ."
check "its event log is in the state directory, its own" \
    sh -c "test -n \"\$(find '$state' -mindepth 1 -user $uid | head -1)\""

# SIGHUP: a publish token added to the file takes effect without a restart.
publish() { curl -s -o /dev/null -w '%{http_code}' -X POST -H "Authorization: Bearer $1" \
    --data hello "http://127.0.0.1:$port/topics/news" || true; }
status=$(publish reload-test-token-0123456789)
check "before the reload, a publish is refused ($status)" test "$status" != 200
cp /etc/tether/tether.toml "$work/tether.toml.orig"
echo 'publish-token = "reload-test-token-0123456789"' >>/etc/tether/tether.toml
kill -HUP "$server" 2>/dev/null || true
reloaded=
for _ in $(seq 50); do
    grep -q 'config: reloaded: .*publish-token' "$work/server.log" && { reloaded=1; break; }
    sleep 0.1
done
check "SIGHUP: the log says the publish token was reloaded" test -n "$reloaded"
status=$(publish reload-test-token-0123456789)
check "after the reload, the publish is taken ($status)" test "$status" = 200
cp "$work/tether.toml.orig" /etc/tether/tether.toml

kill -TERM "$server" 2>/dev/null || true
code=0
wait "$server" || code=$?
server=
check "SIGTERM: a clean exit (status $code)" test "$code" -eq 0
if [ "$failed" -gt 0 ]; then
    echo "--- the server's log"
    cat "$work/server.log"
fi

DEBIAN_FRONTEND=noninteractive dpkg --purge tether >"$work/purge.log" 2>&1 || cat "$work/purge.log"
check "dpkg --purge: not installed" sh -c "! dpkg-query -W -f='\${Status}' tether 2>/dev/null | grep -q installed"
for path in /usr/bin/tether /etc/tether "$unit_path" /var/lib/tether /var/lib/private/tether; do
    check "dpkg --purge: $path is gone" test ! -e "$path"
done
finish deb
