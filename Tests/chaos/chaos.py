#!/usr/bin/env python3
"""Jepsen-style chaos on real Rampart processes.

A primary and one or two standbys run as real `rampart server` processes, each in its own network
namespace on a bridge, each on its own small tmpfs. A client publishes continuously and records every
publish it started and how it ended. A seeded nemesis kills (-9), pauses (SIGSTOP/SIGCONT), partitions
(nftables in the servers' namespaces, one direction or both), fills the active's disk and promotes
standbys. Afterwards everything is healed, every server restarted (which verifies its journal's hash
chain) and a checker reads the history:

  * sync mode: no acknowledged revision is lost: the final journal holds each one at its number, in its
    epoch, with its object;
  * async mode: what is lost is at most what forced promotions reported as possibly lost;
  * no two servers acknowledged publishes in one epoch, and no old epoch acknowledged a publish after a
    newer epoch had acknowledged one (no overlapping actives);
  * every server's journal links (number, previous hash) and all converge to one head.

Usage (as root; needs ip, nft, a built rampart):
  Tests/chaos/chaos.py --binary .build/debug/rampart --faults 30 --seed 7 [--servers 3] [--mode sync|async]
  Tests/chaos/chaos.py --minutes 60 ...        # runs schedules until time is up (a new seed each round)
Prints the seed and the schedule; the same seed replays the same schedule. Exit 0 when no violation.
"""

import argparse
import base64
import http.client
import json
import os
import random
import shutil
import signal
import ssl
import subprocess
import sys
import tempfile
import threading
import time

NAMES = ["mgmt-a", "mgmt-b", "mgmt-c"]
API_PORT = 8443
SIC_PORT = 18191
CALL_TIMEOUT_SECONDS = 8
PASSWORD = "chaos-Admin-password-1"


def log(message):
    print(f"[{time.strftime('%H:%M:%S')}] {message}", flush=True)


def run(args, check=True, timeout=60, quiet=False):
    result = subprocess.run(args, capture_output=True, text=True, timeout=timeout)
    if check and result.returncode != 0:
        raise RuntimeError(f"{' '.join(args)} failed ({result.returncode}): {result.stderr.strip()[:400]}")
    return result


class Lab:
    """A bridge in the root namespace and one namespace per server, each with a tmpfs data directory."""

    def __init__(self, count, work, tmpfs_megabytes):
        self.tag = f"rch{os.getpid() % 10000}"
        self.subnet = 200 + os.getpid() % 50
        self.bridge = f"{self.tag}br"
        self.work = work
        self.namespaces = [f"{self.tag}{i}" for i in range(count)]
        self.addresses = [f"10.{self.subnet}.7.{11 + i}" for i in range(count)]
        self.mounts = []
        self.tmpfs_megabytes = tmpfs_megabytes

    def up(self):
        run(["ip", "link", "add", self.bridge, "type", "bridge"])
        run(["ip", "addr", "add", f"10.{self.subnet}.7.1/24", "dev", self.bridge])
        run(["ip", "link", "set", self.bridge, "up"])
        for index, namespace in enumerate(self.namespaces):
            run(["ip", "netns", "add", namespace])
            host_side = f"{self.tag}v{index}"
            run(["ip", "link", "add", host_side, "type", "veth", "peer", "name", "eth0", "netns", namespace])
            run(["ip", "link", "set", host_side, "master", self.bridge, "up"])
            self.ns(index, ["ip", "addr", "add", f"{self.addresses[index]}/24", "dev", "eth0"])
            self.ns(index, ["ip", "link", "set", "eth0", "up"])
            self.ns(index, ["ip", "link", "set", "lo", "up"])
            self.ns(index, ["nft", "add", "table", "inet", "chaos"])
            for hook in ("input", "output"):
                self.ns(index, ["nft", "add", "chain", "inet", "chaos", hook,
                                f"{{ type filter hook {hook} priority 0 ; policy accept ; }}"])
            mount = os.path.join(self.work, NAMES[index])
            os.makedirs(mount)
            run(["mount", "-t", "tmpfs", "-o", f"size={self.tmpfs_megabytes}m,mode=0700", "tmpfs", mount])
            self.mounts.append(mount)

    def ns(self, index, args, check=True):
        return run(["ip", "netns", "exec", self.namespaces[index]] + args, check=check)

    def cut(self, index, peer, direction):
        """Drops what `index` receives from `peer` (in), sends to it (out) or both."""
        if direction in ("in", "both"):
            self.ns(index, ["nft", "add", "rule", "inet", "chaos", "input", "ip", "saddr", self.addresses[peer], "drop"])
        if direction in ("out", "both"):
            self.ns(index, ["nft", "add", "rule", "inet", "chaos", "output", "ip", "daddr", self.addresses[peer], "drop"])

    def heal(self):
        for index in range(len(self.namespaces)):
            for hook in ("input", "output"):
                self.ns(index, ["nft", "flush", "chain", "inet", "chaos", hook], check=False)

    def down(self):
        for mount in self.mounts:
            run(["umount", "-l", mount], check=False)
        for namespace in self.namespaces:
            run(["ip", "netns", "delete", namespace], check=False)
        run(["ip", "link", "delete", self.bridge], check=False)


class Server:
    def __init__(self, lab, index, binary):
        self.lab, self.index, self.binary = lab, index, binary
        self.name = NAMES[index]
        self.data = os.path.join(lab.mounts[index], "data")
        self.address = lab.addresses[index]
        self.process = None
        self.paused = False
        self.log_path = os.path.join(lab.work, f"{self.name}.log")

    def start(self, extra=()):
        log_file = open(self.log_path, "a")
        args = ["ip", "netns", "exec", self.lab.namespaces[self.index], self.binary, "server", "--data", self.data,
                "--server-name", self.name, "--listen", self.address, "--api-port", str(API_PORT),
                "--sic-port", str(SIC_PORT)] + list(extra)
        self.process = subprocess.Popen(args, stdout=log_file, stderr=subprocess.STDOUT, start_new_session=True)
        self.paused = False

    def alive(self):
        return self.process is not None and self.process.poll() is None

    def signal(self, number):
        if self.alive():
            os.killpg(self.process.pid, number)

    def kill(self):
        self.resume()
        self.signal(signal.SIGKILL)
        if self.process:
            self.process.wait(timeout=30)

    def pause(self):
        self.signal(signal.SIGSTOP)
        self.paused = True

    def resume(self):
        if self.paused:
            self.signal(signal.SIGCONT)
            self.paused = False

    def stop(self):
        self.resume()
        if self.alive():
            self.signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.kill()

    def status(self):
        """`rampart ha status --json` over the local socket; None when it does not answer."""
        if not self.alive() or self.paused:
            return None
        try:
            result = run([self.binary, "ha", "status", "--json", "--data", self.data], check=False, timeout=10)
            return json.loads(result.stdout) if result.stdout.strip().startswith("{") else None
        except (subprocess.TimeoutExpired, json.JSONDecodeError):
            return None

    def is_writable_active(self):
        status = self.status()
        return bool(status and status.get("mode") == "active" and status.get("writes-enabled"))

    def promote(self, force=False):
        args = [self.binary, "ha", "promote", "--json", "--data", self.data] + (["--force"] if force else [])
        try:
            result = run(args, check=False, timeout=60)
        except subprocess.TimeoutExpired:
            return False, {"error": "promote timed out"}
        try:
            body = json.loads(result.stdout)
        except json.JSONDecodeError:
            body = {"output": (result.stdout + result.stderr).strip()[:300]}
        return result.returncode == 0, body


class API:
    """The Web API of one server, over HTTPS with the group's Internal CA."""

    def __init__(self, server, ca_file):
        self.server = server
        self.context = ssl.create_default_context(cafile=ca_file)
        self.context.check_hostname = False
        self.sid = None

    def call(self, command, body):
        connection = http.client.HTTPSConnection(self.server.address, API_PORT, context=self.context,
                                                 timeout=CALL_TIMEOUT_SECONDS)
        headers = {"Content-Type": "application/json"}
        if self.sid:
            headers["X-chkp-sid"] = self.sid
        try:
            connection.request("POST", f"/web_api/{command}", json.dumps(body), headers)
            response = connection.getresponse()
            text = response.read()
            return response.status, json.loads(text) if text else {}
        finally:
            connection.close()

    def login(self):
        status, body = self.call("login", {"user": "admin", "password": PASSWORD})
        if status != 200:
            raise RuntimeError(f"login on {self.server.name}: {status} {body}")
        self.sid = body["sid"]


class History:
    """Every publish the client started: what it sent, where, and how it ended."""

    def __init__(self):
        self.lock = threading.Lock()
        self.operations = []

    def add(self, record):
        with self.lock:
            self.operations.append(record)

    def acknowledged(self):
        with self.lock:
            return [op for op in self.operations if op["result"] == "ok"]


class Client(threading.Thread):
    """Publishes one new host per revision, to whichever server is the writable active."""

    def __init__(self, servers, ca_file, history, stop_event):
        super().__init__(daemon=True)
        self.servers, self.ca_file, self.history, self.stop_event = servers, ca_file, history, stop_event
        self.sequence = 0
        self.apis = {}

    def run(self):
        api = None
        while not self.stop_event.is_set():
            if api is None:
                api = self.find_active()
                if api is None:
                    time.sleep(0.2)
                    continue
            result = self.publish_one(api)
            if result not in ("ok", "refused"):
                api = None

    def find_active(self):
        """The writable active's API, with one session per server kept across faults (sessions outlive a
        restart; a new login per fault would exhaust the administrator's ten)."""
        for server in self.servers:
            if server.is_writable_active():
                api = self.apis.setdefault(server.name, API(server, self.ca_file))
                try:
                    if api.sid is None:
                        api.login()
                    return api
                except Exception:
                    continue
        return None

    def publish_one(self, api):
        self.sequence += 1
        name = f"chaos-{self.sequence}"
        record = {"name": name, "server": api.server.name, "start": time.monotonic(), "result": "unknown"}
        try:
            status, body = api.call("add-host", {"name": name, "ip-address": f"10.9.{self.sequence // 250 % 250}.{self.sequence % 250 + 1}"})
            if status != 200:
                record["result"] = "refused"
                record["error"] = body.get("code", status)
                if status == 401 or "session" in str(body.get("code", "")):
                    api.sid = None  # the server forgot it: log in again
                return "refused" if status in (400, 409) else "lost-session"
            status, body = api.call("publish", {})
            if status != 200:
                record["result"] = "failed"
                record["error"] = body.get("code", status)
                return "failed"
            record.update(self.wait_task(api, body.get("task-id")))
            return "ok" if record["result"] == "ok" else record["result"]
        except Exception as error:  # the server died, paused or is cut off: the outcome is unknown
            record["error"] = type(error).__name__
            return "unknown"
        finally:
            record["end"] = time.monotonic()
            self.history.add(record)

    def wait_task(self, api, task_id):
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            status, body = api.call("show-task", {"task-id": task_id, "details-level": "full"})
            tasks = body.get("tasks") or [{}]
            task = tasks[0]
            state = task.get("status")
            if state == "in progress":
                time.sleep(0.05)
                continue
            details = (task.get("task-details") or [{}])[0]
            epoch = details.get("epoch") or {}
            outcome = {"task-status": state, "revision": details.get("revision-number"),
                       "hash": details.get("revision"), "epoch": [epoch.get("term"), epoch.get("server")]}
            # "partially succeeded" in sync mode: committed but no standby confirmed it: not acknowledged.
            outcome["result"] = "ok" if state == "succeeded" else "indeterminate"
            return outcome
        return {"result": "unknown"}


class Nemesis:
    def __init__(self, lab, servers, rng, mode, schedule):
        self.lab, self.servers, self.rng, self.mode = lab, servers, rng, mode
        self.schedule = schedule
        self.reported_loss = 0
        self.forced_promotions = 0
        self.collisions_resolved = 0
        self.divergent = []
        self.divergent_files = []

    def active_index(self):
        for server in self.servers:
            if server.is_writable_active():
                return server.index
        return None

    def note(self, fault, **details):
        entry = {"fault": fault, **details}
        self.schedule.append(entry)
        log(f"nemesis: {json.dumps(entry)}")

    def one_fault(self):
        kinds = ["kill", "pause", "partition", "disk", "promote"]
        kind = self.rng.choice(kinds)
        active = self.active_index()
        target = active if active is not None and self.rng.random() < 0.6 else self.rng.randrange(len(self.servers))
        hold = round(self.rng.uniform(1.0, 3.0), 2)
        getattr(self, f"fault_{kind}")(target, hold)

    def fault_kill(self, target, hold):
        self.note("kill -9", server=NAMES[target], restart_after_s=hold)
        self.servers[target].kill()
        time.sleep(hold)
        self.ensure_active(exclude=target)
        self.servers[target].start()

    def fault_pause(self, target, hold):
        self.note("pause", server=NAMES[target], seconds=hold)
        self.servers[target].pause()
        time.sleep(hold)
        self.servers[target].resume()

    def fault_partition(self, target, hold):
        direction = self.rng.choice(["both", "in", "out"])
        self.note("partition", server=NAMES[target], direction=direction, seconds=hold)
        for peer in range(len(self.servers)):
            if peer != target:
                self.lab.cut(target, peer, direction)
        time.sleep(hold)
        if self.rng.random() < 0.5:
            self.ensure_active(exclude=target)
        self.lab.heal()

    def fault_disk(self, target, hold):
        self.note("disk full", server=NAMES[target], seconds=hold)
        filler = os.path.join(self.lab.mounts[target], "filler")
        subprocess.run(["dd", "if=/dev/zero", f"of={filler}", "bs=1M"], capture_output=True)
        time.sleep(hold)
        os.remove(filler)

    def fault_promote(self, target, hold):
        standbys = [s for s in self.servers if s.alive() and not s.is_writable_active()]
        if not standbys:
            self.note("promote", server=None, result="no standby")
            return
        candidate = self.rng.choice(standbys)
        ok, body = candidate.promote()
        self.note("promote", server=candidate.name, ok=ok, summary=str(body)[:200])

    def resolve_collisions(self):
        """A server in collision (an old active that committed what the new one never received) waits for
        an operator: export what only it holds, then keep the active's data, as the runbook says. The
        exported revisions are kept for the checker: none may be an acknowledged one."""
        for server in self.servers:
            status = server.status()
            if not status or status.get("sync-status") != "collision" or status.get("mode") == "active":
                continue
            export = os.path.join(self.lab.work, f"divergent-{len(self.divergent_files)}.jsonl")
            run([server.binary, "ha", "export-divergent", export, "--data", server.data], check=False, timeout=60)
            if os.path.exists(export):
                self.divergent_files.append(export)
                with open(export) as handle:
                    for line in handle:
                        if line.strip():
                            self.divergent.append(json.loads(line))
            result = run([server.binary, "ha", "resolve-collision", "--keep", "peer", "--data", server.data], check=False, timeout=60)
            self.collisions_resolved += 1
            self.note("resolve-collision --keep peer", server=server.name, ok=result.returncode == 0,
                      exported=len(self.divergent))

    def ensure_active(self, exclude=None):
        """After the active is gone: promote a standby as an operator would (plain first; forced only in
        async mode, recording what the promotion says may be lost)."""
        self.resolve_collisions()
        if self.active_index() is not None:
            return
        for server in self.servers:
            if server.index == exclude or not server.alive():
                continue
            ok, body = server.promote()
            self.note("promote (failover)", server=server.name, ok=ok, summary=str(body)[:200])
            if ok:
                return
            if self.mode == "async":
                ok, body = server.promote(force=True)
                self.forced_promotions += 1
                self.reported_loss += possible_loss(body)
                self.note("promote --force", server=server.name, ok=ok, summary=str(body)[:200])
                if ok:
                    return


def possible_loss(body):
    """The revisions a forced promotion says may be lost (its dry-run figures)."""
    if not isinstance(body, dict):
        return 0
    if isinstance(body.get("known-lag-revisions"), int):
        return body["known-lag-revisions"]
    # Unreachable active in async mode: the promotion says revisions may be lost without a count.
    return float("inf") if body.get("may-lose-revisions") else 0


def wait_until(predicate, seconds, what):
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.25)
    raise RuntimeError(f"timed out after {seconds} s waiting for {what}")


def revisions(server, ca_file):
    api = API(server, ca_file)
    api.login()
    out, offset = {}, 0
    while True:
        status, body = api.call("show-revisions", {"limit": 500, "offset": offset})
        if status != 200:
            raise RuntimeError(f"show-revisions on {server.name}: {status} {body}")
        for revision in body.get("objects", []):
            out[revision["number"]] = revision
        offset += len(body.get("objects", []))
        if offset >= body.get("total", 0) or not body.get("objects"):
            api.call("logout", {})
            return out


def check(history, servers, ca_file, mode, nemesis):
    violations = []
    acknowledged = history.acknowledged()
    # Epochs: one server per epoch; an older epoch never acknowledges after a newer one did.
    by_epoch = {}
    for op in acknowledged:
        term, owner = op["epoch"]
        if owner != op["server"]:
            violations.append(f"{op['name']} acknowledged by {op['server']} in epoch {term}/{owner}")
        by_epoch.setdefault((term, owner), []).append(op)
    terms = {}
    for (term, owner) in by_epoch:
        terms.setdefault(term, set()).add(owner)
    for term, owners in terms.items():
        if len(owners) > 1:
            violations.append(f"term {term} acknowledged by several servers: {sorted(owners)}")
    epochs = sorted(by_epoch)
    for older_index, older in enumerate(epochs):
        for newer in epochs[older_index + 1:]:
            first_newer_ack = min(op["end"] for op in by_epoch[newer])
            late = [op["name"] for op in by_epoch[older] if op["start"] > first_newer_ack]
            if late:
                violations.append(f"epoch {older} acknowledged {late[:5]} after epoch {newer} had acknowledged")
    # Journals: each server's links, one head for all, every acknowledged revision in place.
    journals = {server.name: revisions(server, ca_file) for server in servers}
    heads = {name: max(journal) for name, journal in journals.items()}
    reference_name = servers[0].name
    reference = journals[reference_name]
    for name, journal in journals.items():
        for number in sorted(journal):
            previous = journal.get(number - 1)
            if previous and journal[number]["previous-hash"] != previous["hash"]:
                violations.append(f"{name}: revision {number} does not link to {number - 1}")
        if [(n, r["hash"]) for n, r in sorted(journal.items())] != [(n, r["hash"]) for n, r in sorted(reference.items())]:
            violations.append(f"{name} did not converge with {reference_name} (heads {heads})")
    lost = []
    for op in acknowledged:
        revision = reference.get(op["revision"])
        term, owner = op["epoch"]
        if revision is None or revision["hash"] != op["hash"] or revision["epoch"] != {"term": term, "server": owner}:
            lost.append(op["name"])
    # An exported revision is matched by its hash, or by its number and epoch (both identify it).
    divergent_ids = {revision.get("hash") for revision in nemesis.divergent if revision.get("hash")}
    divergent_ids |= {(revision.get("number"), json.dumps(revision.get("epoch"), sort_keys=True)) for revision in nemesis.divergent}
    dropped = [op["name"] for op in acknowledged if op.get("hash") in divergent_ids or
               (op["revision"], json.dumps({"server": op["epoch"][1], "term": op["epoch"][0]}, sort_keys=True)) in divergent_ids]
    if mode == "sync" and dropped:
        violations.append(f"acknowledged revision(s) were in a collision's divergent set: {dropped[:10]}")
    if mode == "sync" and lost:
        violations.append(f"{len(lost)} acknowledged revision(s) lost in sync mode: {lost[:10]}")
    if mode == "async" and len(lost) > nemesis.reported_loss:
        violations.append(f"{len(lost)} acknowledged revision(s) lost, promotions reported {nemesis.reported_loss}")
    return violations, {"acknowledged": len(acknowledged), "lost": len(lost), "epochs": len(epochs),
                        "collisions-resolved": nemesis.collisions_resolved, "divergent-revisions": len(nemesis.divergent),
                        "head": heads.get(reference_name)}


def setup(args, lab):
    servers = [Server(lab, i, args.binary) for i in range(args.servers)]
    password_file = os.path.join(lab.work, "admin-password")
    with open(os.open(password_file, os.O_WRONLY | os.O_CREAT, 0o600), "w") as handle:
        handle.write(PASSWORD)
    primary = servers[0]
    primary.start(["--admin-password-file", password_file])
    wait_until(lambda: os.path.exists(os.path.join(primary.data, "node.json")), 60, "the primary's API")
    ca_file = os.path.join(lab.work, "ica.pem")
    shutil.copy(os.path.join(primary.data, "pki", "ica.pem"), ca_file)
    api = API(primary, ca_file)
    api.login()
    for server in servers[1:]:
        key_file = os.path.join(lab.work, f"{server.name}.key")
        run([args.binary, "sic", "new-key", "--out", key_file])
        with open(key_file) as handle:
            key = handle.read().strip()
        for command, body in (("add-checkpoint-host", {"name": server.name, "ip-address": server.address,
                                                       "one-time-password": key}),
                              ("publish", {})):
            status, reply = api.call(command, body)
            if status != 200:
                raise RuntimeError(f"{command}: {status} {reply}")
        time.sleep(0.5)
        server.start(["--join", f"{primary.address}:{SIC_PORT}", "--activation-key-file", key_file])
    wait_until(lambda: all(status_ok(s) for s in servers), 120, "every server synchronized")
    if args.mode == "sync":
        run([args.binary, "ha", "set-mode", "sync", "--timeout-ms", "2000", "--data", primary.data])
    return servers, ca_file


def status_ok(server):
    status = server.status()
    return bool(status and status.get("sync-status") == "synchronized")


def converge(servers, nemesis):
    for server in servers:
        server.resume()
        if not server.alive():
            server.start()
    nemesis.lab.heal()
    wait_until(lambda: all(s.status() for s in servers), 90, "every server answering")
    if nemesis.active_index() is None:
        time.sleep(2)
        nemesis.ensure_active()
    wait_until(lambda: nemesis.active_index() is not None, 60, "a writable active")
    def one_head():
        statuses = [s.status() for s in servers]
        if any(st is None for st in statuses):
            return False
        return len({json.dumps(st.get("head")) for st in statuses}) == 1 and all(
            st.get("sync-status") == "synchronized" for st in statuses)
    def one_head_resolving():
        nemesis.resolve_collisions()
        return one_head()
    wait_until(one_head_resolving, 120, "one head on every server")


def restart_all(servers):
    """A start verifies the journal's hash chain and refuses a broken one."""
    for server in servers:
        server.stop()
    for server in servers:
        server.start()
    wait_until(lambda: all(s.status() for s in servers), 90, "every server back after a restart (journal verified)")


def one_schedule(args, seed):
    rng = random.Random(seed)
    work = tempfile.mkdtemp(prefix="rampart-chaos-")
    lab = Lab(args.servers, work, args.tmpfs_megabytes)
    schedule, history, stop_event = [], History(), threading.Event()
    servers = []
    try:
        lab.up()
        servers, ca_file = setup(args, lab)
        nemesis = Nemesis(lab, servers, rng, args.mode, schedule)
        client = Client(servers, ca_file, history, stop_event)
        client.start()
        for _ in range(args.faults):
            nemesis.one_fault()
            time.sleep(round(rng.uniform(0.5, 1.5), 2))
            nemesis.ensure_active()
        stop_event.set()
        client.join(timeout=60)
        converge(servers, nemesis)
        restart_all(servers)
        converge(servers, nemesis)
        violations, figures = check(history, servers, ca_file, args.mode, nemesis)
        figures.update({"seed": seed, "faults": len(schedule), "mode": args.mode, "servers": args.servers,
                        "forced-promotions": nemesis.forced_promotions,
                        "publishes-started": len(history.operations)})
        return violations, figures, schedule
    except Exception as error:
        return [f"the run could not complete: {error}"], {"seed": seed, "faults": len(schedule)}, schedule
    finally:
        stop_event.set()
        for server in servers:
            try:
                server.kill()
            except Exception:
                pass
        if args.keep:
            log(f"work directory kept: {work} (logs: mgmt-*.log)")
            for index, server in enumerate(servers):
                shutil.copy(server.log_path, os.path.join(tempfile.gettempdir(), f"chaos-{seed}-{server.name}.log"))
        lab.down()
        shutil.rmtree(work, ignore_errors=True)


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--binary", default=".build/debug/rampart")
    parser.add_argument("--seed", type=int, default=None, help="replay one schedule")
    parser.add_argument("--faults", type=int, default=20, help="faults per schedule")
    parser.add_argument("--servers", type=int, choices=[2, 3], default=2)
    parser.add_argument("--mode", choices=["sync", "async"], default="sync")
    parser.add_argument("--minutes", type=float, default=0, help="run schedules until this many minutes have passed")
    parser.add_argument("--tmpfs-megabytes", type=int, default=128)
    parser.add_argument("--keep", action="store_true", help="keep each server's log in /tmp")
    parser.add_argument("--json", action="store_true", help="one JSON object per schedule on stdout's last lines")
    args = parser.parse_args()
    args.binary = os.path.abspath(args.binary)
    if os.geteuid() != 0:
        sys.exit("chaos: run as root (network namespaces, nftables, tmpfs)")
    deadline = time.monotonic() + args.minutes * 60
    seed = args.seed if args.seed is not None else random.SystemRandom().randrange(1, 2**31)
    total_faults, failed = 0, False
    while True:
        log(f"chaos: seed {seed}, {args.servers} servers, {args.mode} mode, {args.faults} faults "
            f"(replay: --seed {seed} --servers {args.servers} --mode {args.mode} --faults {args.faults})")
        violations, figures, schedule = one_schedule(args, seed)
        total_faults += len(schedule)
        figures["violations"] = violations
        print(json.dumps(figures) if args.json else f"chaos: {json.dumps(figures)}", flush=True)
        if violations:
            failed = True
            for violation in violations:
                log(f"VIOLATION (seed {seed}): {violation}")
            break
        if args.seed is not None or time.monotonic() >= deadline:
            break
        seed = random.SystemRandom().randrange(1, 2**31)
    log(f"chaos: {'FAILED' if failed else 'ok'}: {total_faults} faults injected")
    sys.exit(1 if failed else 0)


if __name__ == "__main__":
    main()
