"""Schemathesis hooks for Rampart's contract fuzz (Tests/contract/run.sh loads them with SCHEMATHESIS_HOOKS).

Checks beyond schemathesis' own `not_a_server_error`:
- every refusal (4xx) is a JSON object with a string `code` and a string `message`;
- a refused request leaves the published head, the object count and the session's pending changes
  and locks as they were: the state is read before each call and compared after a refusal (every
  command, not only the changing ones: a refused read must not change anything either).
The fuzz runs with one worker, so nothing else changes the server between the two readings.
"""

import json
import os

import requests
import schemathesis

BASE = os.environ["RAMPART_URL"]
SID = os.environ["RAMPART_SID"]
CA = os.environ.get("RAMPART_CA", True)
_before = {}
# One connection for the state readings (a TLS handshake per reading would dominate the run).
_http = requests.Session()


def _call(command, body):
    reply = _http.post(f"{BASE}/web_api/{command}", json=body, headers={"X-chkp-sid": SID}, verify=CA, timeout=30)
    reply.raise_for_status()
    return reply.json()


def server_state():
    """What a refused change must not move: the head revision, the objects the session sees, and the
    session's own pending changes and locks."""
    revisions = _call("show-revisions", {"limit": 1})
    objects = _call("show-objects", {"limit": 1})
    session = _call("show-session", {})
    return {
        "revisions": revisions.get("total"),
        "head": (revisions.get("objects") or [None])[0],
        "objects": objects.get("total"),
        "session-changes": session.get("changes"),
        "session-locks": session.get("locks"),
    }


def _command(case):
    return case.operation.path.rsplit("/", 1)[-1]


@schemathesis.hook
def before_call(context, case, kwargs):
    _before[_command(case)] = server_state()


@schemathesis.check
def error_has_code_and_message(ctx, response, case):
    """A refusal is a Check Point error body: {code, message} (details may sit beside them)."""
    if 400 <= response.status_code < 500:
        try:
            body = json.loads(response.content)
        except ValueError:
            raise AssertionError(f"{response.status_code} without a JSON body: {response.content[:200]!r}")
        if not isinstance(body, dict) or not isinstance(body.get("code"), str) or not isinstance(body.get("message"), str):
            raise AssertionError(f"{response.status_code} body lacks code/message: {response.content[:300]!r}")


@schemathesis.check
def refused_change_changes_nothing(ctx, response, case):
    """A refused request left the head, the object count and the session as they were."""
    command = _command(case)
    if response.status_code < 400:
        return
    before = _before.pop(command, None)
    if before is None:
        return
    after = server_state()
    if after != before:
        moved = {key: (before[key], after[key]) for key in before if before[key] != after[key]}
        raise AssertionError(f"{command} was refused ({response.status_code}) but changed the server: {moved}")
