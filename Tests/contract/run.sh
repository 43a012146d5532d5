#!/usr/bin/env bash
# Contract fuzz: schemathesis (pinned) drives a real `rampart server` (temporary data directory,
# ephemeral ports) from the OpenAPI document it serves at /web_api/openapi.json, logged in as the
# initial administrator. Checks: no 5xx; every refusal has `code` and `message`; a refused request
# leaves the published head, the object count and the session's pending changes unchanged
# (Tests/contract/checks.py). Bounded: CONTRACT_EXAMPLES per command (default 8) and
# CONTRACT_SECONDS for the whole fuzz (default 120). Usage: Tests/contract/run.sh [path/to/rampart]
# Prints "contract-fuzz: ..." last; exits non-zero on any failure.
set -u -o pipefail

here="$(cd "$(dirname "$0")" && pwd)"
repo="$(cd "$here/../.." && pwd)"
binary="${1:-$repo/.build/debug/rampart}"
[[ "$binary" = /* ]] || binary="$PWD/$binary"
schemathesis_version="4.32.5"
examples="${CONTRACT_EXAMPLES:-8}"
seconds="${CONTRACT_SECONDS:-120}"
seed="${CONTRACT_SEED:-$RANDOM}"

fail() {
    echo "$1" >&2
    echo "contract-fuzz: FAILED ($1)"
    exit 1
}
[[ -x "$binary" ]] || fail "rampart binary not found at $binary (build it: swift build --product rampart)"
if [[ "$(python3 -c 'import schemathesis; print(schemathesis.__version__)' 2>/dev/null)" != "$schemathesis_version" ]]; then
    echo "installing schemathesis $schemathesis_version with pip (quietly)…"
    python3 -m pip install --quiet --disable-pip-version-check "schemathesis==$schemathesis_version" >/dev/null 2>&1 || true
    python3 -c 'import schemathesis' 2>/dev/null || fail "could not install schemathesis"
fi

work="$(mktemp -d "${TMPDIR:-/tmp}/rampart-contract.XXXXXX")"
data="$work/data"
server_pid=""
cleanup() {
    if [[ -n "$server_pid" ]] && kill -0 "$server_pid" 2>/dev/null; then
        kill "$server_pid" 2>/dev/null
        for _ in $(seq 1 50); do kill -0 "$server_pid" 2>/dev/null || break; sleep 0.1; done
        kill -9 "$server_pid" 2>/dev/null
    fi
    if [[ "${KEEP_WORK:-0}" = 1 ]]; then echo "work directory kept: $work"; else rm -rf "$work"; fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM

mkdir -p "$data"
"$binary" server --data "$data" --api-port 0 --sic-port 0 >"$work/server.log" 2>&1 &
server_pid=$!
# node.json appears once the API listens (bounded: 60 s).
for _ in $(seq 1 600); do
    [[ -s "$data/node.json" && -s "$data/initial-admin-password" ]] && break
    kill -0 "$server_pid" 2>/dev/null || break
    sleep 0.1
done
if [[ ! -s "$data/node.json" ]]; then
    cat "$work/server.log" >&2
    fail "the server did not start"
fi
port="$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["api-port"])' "$data/node.json")"
export RAMPART_URL="https://127.0.0.1:$port" RAMPART_CA="$data/pki/ica.pem"

# The sid goes through the environment (never onto a command line: ps shows those).
RAMPART_SID="$(python3 - "$data/initial-admin-password" <<'PY'
import json, os, sys, requests
password = open(sys.argv[1]).read().strip()
reply = requests.post(os.environ["RAMPART_URL"] + "/web_api/login", json={"user": "admin", "password": password, "session-timeout": 3600},
                      verify=os.environ["RAMPART_CA"], timeout=30)
print(reply.json()["sid"])
PY
)" || fail "login failed"
export RAMPART_SID
# The fuzz never ends its own session (logout; set-ha-state standby demotes this server, which ends
# its sessions), and never names a path on the server to write (export-management,
# ha-export-divergent write files where they are told).
cat >"$work/schemathesis.toml" <<EOF2
headers = { "X-chkp-sid" = "\${RAMPART_SID}" }
EOF2

export SCHEMATHESIS_HOOKS="$here/checks.py"
status=0
(cd "$work" && schemathesis --config-file "$work/schemathesis.toml" --no-color run "$RAMPART_URL/web_api/openapi.json" \
    --tls-verify "$RAMPART_CA" --workers 1 --max-examples "$examples" --max-time "$seconds" --seed "$seed" \
    --phases examples,coverage,fuzzing --request-timeout 30 --generation-with-security-parameters false \
    --exclude-operation-id logout --exclude-operation-id set-ha-state --exclude-operation-id export-management --exclude-operation-id ha-export-divergent \
    --exclude-checks status_code_conformance,content_type_conformance,response_headers_conformance,negative_data_rejection,positive_data_acceptance,missing_required_header,unsupported_method,allow_header_conformance,use_after_free,ensure_resource_availability,object_level_authorization \
    --suppress-health-check all --report junit --report-dir "$work/report") >"$work/schemathesis.log" 2>&1 || status=$?
tail -40 "$work/schemathesis.log"
# A 500 is logged as "command failed" (ManagementService.errorResponse); a trap as "Fatal error".
if grep -q "command failed\|Fatal error" "$work/server.log"; then
    echo "the server log shows a server error or a trap:"
    grep -n "command failed\|Fatal error" "$work/server.log" | head -20
    status=1
fi
kill -0 "$server_pid" 2>/dev/null || { echo "the server is gone"; status=1; }
if [[ $status -ne 0 ]]; then
    KEEP_WORK=1
    echo "contract-fuzz: FAILED (seed $seed; schemathesis log: $work/schemathesis.log; server log: $work/server.log)"
    exit 1
fi
echo "contract-fuzz: passed (seed $seed, at most $examples examples per command, $seconds s cap)"
