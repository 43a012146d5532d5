#!/usr/bin/env bash
# Ansible compatibility test: runs Check Point's check_point.mgmt collection, unchanged, against a
# real `rampart server` on a temporary data directory, and checks first run, idempotent rerun,
# check mode, discard and deletion. Usage: Tests/ansible/run.sh [path/to/rampart]
# Prints "ansible-compat: N passed, M failed" last; exits non-zero when anything failed.
set -u -o pipefail

here="$(cd "$(dirname "$0")" && pwd)"
repo="$(cd "$here/../.." && pwd)"
binary="${1:-$repo/.build/debug/rampart}"
[[ "$binary" = /* ]] || binary="$PWD/$binary"
if [[ ! -x "$binary" ]]; then
    echo "rampart binary not found at $binary (build it: swift build --product rampart)" >&2
    echo "ansible-compat: 0 passed, 1 failed"
    exit 1
fi

if ! command -v ansible-playbook >/dev/null 2>&1; then
    echo "ansible-playbook missing; installing ansible with pip (quietly)…"
    python3 -m pip install --quiet --disable-pip-version-check ansible >/dev/null 2>&1 || true
    hash -r
    if ! command -v ansible-playbook >/dev/null 2>&1; then
        echo "could not install ansible" >&2
        echo "ansible-compat: 0 passed, 1 failed"
        exit 1
    fi
fi

work="$(mktemp -d "${TMPDIR:-/tmp}/rampart-ansible.XXXXXX")"
data="$work/data"
server_pid=""
agent_pid=""
cleanup() {
    if [[ -n "$agent_pid" ]] && kill -0 "$agent_pid" 2>/dev/null; then kill "$agent_pid" 2>/dev/null; wait "$agent_pid" 2>/dev/null; fi
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
    echo "the server did not start; its log:" >&2
    cat "$work/server.log" >&2
    echo "ansible-compat: 0 passed, 1 failed"
    exit 1
fi
port="$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["api-port"])' "$data/node.json")"

# Everything Ansible writes stays in the work directory; no user configuration is read.
cat >"$work/ansible.cfg" <<EOF
[defaults]
inventory = $work/inventory.yml
retry_files_enabled = false
nocolor = true
local_tmp = $work/ansible-tmp
interpreter_python = auto_silent
[persistent_connection]
control_path_dir = $work/pc
EOF
export ANSIBLE_CONFIG="$work/ansible.cfg"
export ANSIBLE_NOCOLOR=1 ANSIBLE_FORCE_COLOR=0

# The password goes into the inventory file (mode 0600), never onto a command line.
umask 077
python3 - "$work/inventory.yml" "$port" "$data/initial-admin-password" "$data/pki/ica.pem" <<'EOF'
import json, sys
path, port, password_file, ca = sys.argv[1:]
password = open(password_file).read().strip()
host = {
    "ansible_host": "127.0.0.1",
    "ansible_connection": "ansible.netcommon.httpapi",
    "ansible_network_os": "check_point.mgmt.checkpoint",
    "ansible_httpapi_use_ssl": True,
    # Full TLS verification: the API certificate is issued by the server's Internal CA and
    # names 127.0.0.1.
    "ansible_httpapi_validate_certs": True,
    "ansible_httpapi_ca_path": ca,
    "ansible_httpapi_port": int(port),
    "ansible_user": "admin",
    "ansible_password": password,
    # httpapi modules run on the controller: use the Python that runs ansible-playbook.
    "ansible_python_interpreter": "{{ ansible_playbook_python }}",
}
# JSON is YAML; json.dumps quotes the password safely.
open(path, "w").write(json.dumps({"all": {"hosts": {"rampart": host}}}, indent=2))
EOF

passed=0
failed=0
step=0

# run NAME EXPECTED_CHANGED PLAYBOOK [ansible-playbook args…]
# Passes when ansible-playbook succeeds and PLAY RECAP shows failed=0 and, unless EXPECTED_CHANGED
# is "-", exactly that many changed tasks.
run() {
    local name="$1" expected_changed="$2" playbook="$3"
    shift 3
    step=$((step + 1))
    local log="$work/step-$step.log"
    local status=0
    ansible-playbook "$here/$playbook" "$@" >"$log" 2>&1 || status=$?
    local recap changed failed_tasks
    recap="$(grep -E '^rampart +: ' "$log" | tail -1)"
    changed="$(sed -nE 's/.* changed=([0-9]+).*/\1/p' <<<"$recap")"
    failed_tasks="$(sed -nE 's/.* failed=([0-9]+).*/\1/p' <<<"$recap")"
    local problem=""
    if [[ $status -ne 0 ]]; then problem="ansible-playbook exited with $status"
    elif [[ -z "$recap" ]]; then problem="no PLAY RECAP"
    elif [[ "$failed_tasks" != 0 ]]; then problem="failed=$failed_tasks"
    elif [[ "$expected_changed" != "-" && "$changed" != "$expected_changed" ]]; then
        problem="changed=$changed, expected changed=$expected_changed"
    fi
    if [[ -z "$problem" ]]; then
        passed=$((passed + 1))
        echo "ok   $step $name (changed=$changed)"
    else
        failed=$((failed + 1))
        echo "FAIL $step $name: $problem"
        grep -E '^(fatal|failed):|"msg":|FAILED!|ERROR' "$log" | head -20 | sed 's/^/     /'
        echo "     (log: $log)"
        KEEP_WORK=1
    fi
}

# Objects: 20 object tasks; the publish task runs only when something changed.
run "first run creates every object and publishes"        21 objects.yml -e expect=all
run "facts show what was created"                          0 verify.yml
run "identical second run changes nothing"                 0 objects.yml -e expect=none
run "check mode reports the 4 modified objects as changed" 4 objects.yml --check -e variant=modified -e expect=modified
run "check mode changed nothing on the server"             0 verify.yml
run "modified run changes exactly those 4 and publishes"   5 objects.yml -e variant=modified -e expect=modified
run "facts show the modification"                          0 verify.yml -e variant=modified
# Sessions: pending changes, then discard (the discard module always reports changed).
run "discard drops the pending change"                     2 discard.yml
# Deletion: 19 deletions in 11 tasks (PLAY RECAP counts a loop as one task) plus the publish,
# then nothing left to delete.
run "state absent deletes every object"                   12 delete.yml -e expect=all
run "deleting again changes nothing"                       0 delete.yml -e expect=none

# Clusters: a simple-cluster with members and interfaces (an asynchronous add, waited for), then the
# members through cp_mgmt_cluster_members_facts; the second run is idempotent.
run "simple-cluster with members, auto-published; member facts" 1 clusters.yml -e expect=created
run "simple-cluster again changes nothing"                     0 clusters.yml -e expect=same

# SmartTasks: a repository script, a run-script task and a web-request task with a shared secret,
# each auto-published; facts show them without the secret; the second run is idempotent.
run "repository script and smart tasks, auto-published; facts" 3 smarttasks.yml -e expect=created
run "smart tasks again change nothing"                         0 smarttasks.yml -e expect=same
# Gateways: a simple-gateway from Ansible, a real agent enrolled with its key, then install-policy
# and verify-policy from Ansible, which wait for their tasks.
(umask 077; python3 -c 'import secrets; print(secrets.token_urlsafe(24))' >"$work/gw.key")
run "simple-gateway with a one-time key, published"        2 gateways.yml -e phase=object -e gw_key_file="$work/gw.key"
sic_port="$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["sic-port"])' "$data/node.json")"
"$binary" gateway --data "$work/gw" --name ans-gw-1 --management "127.0.0.1:$sic_port" \
    --activation-key-file "$work/gw.key" --enforce none >"$work/gateway.log" 2>&1 &
agent_pid=$!
# Connected once the server says so (bounded: 60 s).
for _ in $(seq 1 600); do
    "$binary" mgmt show-simple-gateway name=ans-gw-1 -r true --data "$data" 2>/dev/null | grep -q "sic-state: communicating" && break
    kill -0 "$agent_pid" 2>/dev/null || break
    sleep 0.1
done
run "install-policy and verify-policy succeed"              2 gateways.yml -e phase=install

if [[ $failed -ne 0 ]]; then
    echo "server log: $work/server.log"
    echo "gateway log: $work/gateway.log"
fi
echo "ansible-compat: $passed passed, $failed failed"
[[ $failed -eq 0 ]]
