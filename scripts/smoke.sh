#!/usr/bin/env bash
# End-to-end check of a built binary on loopback, with no Python environment on PATH:
# create a client, serve, stream the test pattern with an agent configured by .env, see frames
# arrive (/metrics), revoke the client and see the agent wait with its message, reactivate it and see frames again,
# see an agent with an unknown key stop with exit code 3, stop the server cleanly (Ctrl-C, then a second server by
# SIGTERM).
# Usage: scripts/smoke.sh dist/vigint     Exits non-zero on any failure.
set -euo pipefail
binary=$(realpath "${1:?usage: scripts/smoke.sh PATH_TO_BINARY}")
work=$(mktemp -d)
server_pid="" agent_pid=""
cleanup() {
    [ -n "$agent_pid" ] && kill "$agent_pid" 2>/dev/null || true
    [ -n "$server_pid" ] && kill "$server_pid" 2>/dev/null || true
    rm -rf "$work"
}
trap cleanup EXIT
cd "$work"
export PATH=/usr/bin:/bin
unset VIRTUAL_ENV PYTHONPATH PYTHONHOME
fail() { echo "smoke: FAILED: $*" >&2; for log in serve.log agent.log; do [ -f $log ] && sed 's/^/  | /' $log >&2; done; exit 1; }
step() { echo "smoke: $*"; }

metric() {  # the value of one metric, fetched over plain bash /dev/tcp (no curl needed)
    local reply
    exec 3<>"/dev/tcp/127.0.0.1/$port" || return 1
    printf 'GET /metrics HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n' >&3
    reply=$(cat <&3)
    exec 3>&-
    printf '%s\n' "$reply" | awk -v name="$1" '$1 == name { print int($2) }'
}

step "$("$binary" --version)"
# The PostgreSQL driver is inside: an unreachable server is a clear error, not "needs asyncpg".
if out=$("$binary" client list --db postgresql://vigint@127.0.0.1:1/vigint 2>&1); then fail "no PostgreSQL here: $out"; fi
case "$out" in *"cannot open database postgresql://vigint@127.0.0.1:1/vigint"*) ;; *) fail "PostgreSQL: $out" ;; esac
step "PostgreSQL driver present"
key=$("$binary" client create --name Smoke --email smoke@example.test --json --db vigint.db \
      | sed -n 's/.*"api_key": "\(vig_[0-9A-Za-z]*\)".*/\1/p')
[ -n "$key" ] || fail "client create printed no key"
step "client created"

serve() {  # start the server in a process group of its own, as a terminal or systemd would; sets server_pid and port
    port=""
    setsid "$binary" serve --port 0 --web-port 0 --db vigint.db > serve.log 2>&1 &
    server_pid=$!
    for _ in $(seq 100); do
        port=$(sed -n 's/.*listening *ws:\/\/127\.0\.0\.1:\([0-9]*\).*/\1/p' serve.log)
        [ -n "$port" ] && break
        sleep 0.1
    done
    [ -n "$port" ] || fail "the server did not start"
}
stopped() {  # wait for the server sent a signal; fail unless it drained and exited 0
    local status
    set +e
    wait "$server_pid"
    status=$?
    set -e
    server_pid=""
    [ "$status" -eq 0 ] || fail "the server exited with $status on $1, not 0"
    grep -q "Stopped." serve.log || fail "the server did not drain on $1"
    grep -q "exiting now" serve.log && fail "the server took $1 for two signals"
    step "server stopped cleanly on $1"
}

serve
step "serving on port $port"

printf 'VIGINT_API_KEY=%s\nVIGINT_SERVER_URL=ws://127.0.0.1:%s\n' "$key" "$port" > .env
chmod 600 .env
"$binary" agent --source test --refused-retry-seconds 1 > agent.log 2>&1 &
agent_pid=$!
for _ in $(seq 150); do
    frames=$(metric vigint_frames_decoded_total || echo 0)
    [ "${frames:-0}" -ge 30 ] && break
    sleep 0.2
done
[ "${frames:-0}" -ge 30 ] || fail "no frames reached the server (${frames:-0})"
step "$frames frames decoded"

"$binary" client revoke --client-id 1 --db vigint.db > /dev/null
for _ in $(seq 100); do grep -q "key refused by the server" agent.log && break; sleep 0.1; done
grep -q "key refused by the server" agent.log || fail "the agent did not say that its key was refused"
kill -0 "$agent_pid" 2>/dev/null || fail "the agent stopped after revocation instead of waiting for reactivation"
step "agent waits after revocation: $(grep "key refused" agent.log | tail -n 1)"

before=$(metric vigint_frames_decoded_total || echo 0)
"$binary" client reactivate --client-id 1 --db vigint.db > /dev/null
for _ in $(seq 150); do
    frames=$(metric vigint_frames_decoded_total || echo 0)
    [ "${frames:-0}" -ge $((before + 30)) ] && break
    sleep 0.2
done
[ "${frames:-0}" -ge $((before + 30)) ] || fail "the agent did not stream again after reactivation (${frames:-0} frames)"
step "agent streams again after reactivation: $frames frames decoded"
kill -TERM "$agent_pid"
set +e
wait "$agent_pid"
agent_status=$?
set -e
agent_pid=""
[ "$agent_status" -eq 0 ] || fail "the agent exited with $agent_status on SIGTERM, not 0"

# A key the server never accepted (a typo) stops the agent at once with exit code 3: a restart cannot help.
set +e
VIGINT_API_KEY=$("$binary" key create --client-id 1 --db vigint.db --json | grep -o 'vig_[0-9A-Za-z]*')
"$binary" key revoke --key-id 2 --db vigint.db > /dev/null
mkdir refused && (cd refused && VIGINT_API_KEY="$VIGINT_API_KEY" VIGINT_SERVER_URL="ws://127.0.0.1:$port" \
    timeout 30 "$binary" agent --source test > ../refused.log 2>&1)
refused_status=$?
set -e
[ "$refused_status" -eq 3 ] || fail "an agent with a refused key exited with $refused_status, not 3"
grep -q "contact your Vigint operator" refused.log || fail "the refused agent did not say why it stopped"
step "an agent whose key was never accepted stops with 3: $(tail -n 1 refused.log)"

# Ctrl-C in a terminal reaches the whole process group: the one-file executable's bootloader, which forwards
# it to its child, and the child itself, which must take the two for one keypress.
kill -INT -- -"$server_pid"
stopped "Ctrl-C"
# systemctl stop (KillMode=mixed, scripts/vigint-serve.service): SIGTERM to the main process, forwarded.
serve
kill -TERM "$server_pid"
stopped "SIGTERM"
echo "smoke: passed"
