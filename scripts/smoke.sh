#!/usr/bin/env bash
# End-to-end check of a built binary on loopback, with no Python environment on PATH:
# create a client, serve, stream the test pattern with an agent configured by .env, see frames
# arrive (/metrics), revoke the client, see the agent stop with its message, stop the server cleanly.
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

"$binary" serve --port 0 --web-port 0 --db vigint.db > serve.log 2>&1 &
server_pid=$!
for _ in $(seq 100); do
    port=$(sed -n 's/.*listening *ws:\/\/127\.0\.0\.1:\([0-9]*\).*/\1/p' serve.log)
    [ -n "$port" ] && break
    sleep 0.1
done
[ -n "${port:-}" ] || fail "the server did not start"
step "serving on port $port"

printf 'VIGINT_API_KEY=%s\nVIGINT_SERVER_URL=ws://127.0.0.1:%s\n' "$key" "$port" > .env
chmod 600 .env
"$binary" agent --source test > agent.log 2>&1 &
agent_pid=$!
for _ in $(seq 150); do
    frames=$(metric vigint_frames_decoded_total || echo 0)
    [ "${frames:-0}" -ge 30 ] && break
    sleep 0.2
done
[ "${frames:-0}" -ge 30 ] || fail "no frames reached the server (${frames:-0})"
step "$frames frames decoded"

"$binary" client revoke --client-id 1 --db vigint.db > /dev/null
set +e
for _ in $(seq 100); do kill -0 "$agent_pid" 2>/dev/null || break; sleep 0.1; done
wait "$agent_pid"
agent_status=$?
set -e
agent_pid=""
[ "$agent_status" -eq 1 ] || fail "the agent exited with $agent_status after revocation, not 1"
grep -q "contact your Vigint operator" agent.log || fail "the agent did not say why it stopped"
step "agent stopped after revocation: $(tail -n 1 agent.log)"

kill -TERM "$server_pid"
set +e
wait "$server_pid"
server_status=$?
set -e
server_pid=""
[ "$server_status" -eq 0 ] || fail "the server exited with $server_status on SIGTERM"
step "server stopped cleanly"
echo "smoke: passed"
