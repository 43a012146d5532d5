# A local HTTPS receiver for the SmartTasks tests (SmartTasksTests and EndToEndTests start it on
# 127.0.0.1 with a certificate the test made): it checks the shared secret, the HMAC-SHA256 signature
# over timestamp "." body and the timestamp, refuses a replayed event id, and appends each accepted
# payload to a file. Modes: ok, fail (503), hang (never answers); PORTFILE.mode switches it.
import hashlib, hmac, http.server, json, ssl, sys, time, threading
cert, key, secret, initial_mode, out, port_file = sys.argv[1:7]
mode_file = port_file + ".mode"


def current_mode():
    # A test switches the mode by writing this file (a receiver that comes back up).
    try:
        with open(mode_file) as f:
            return f.read().strip()
    except OSError:
        return initial_mode

seen = set()
lock = threading.Lock()

class Handler(http.server.BaseHTTPRequestHandler):
    def log_message(self, *args):
        pass

    def answer(self, status, text):
        data = text.encode()
        self.send_response(status)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def do_POST(self):
        body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
        mode = current_mode()
        if mode == "hang":
            time.sleep(3600)
            return
        if mode == "fail":
            # What was refused, so a test knows which deliveries the sender will retry.
            with lock:
                with open(out + ".refused", "a") as f:
                    f.write(body.decode(errors="replace") + "\n")
            return self.answer(503, "receiver failing on purpose")
        if self.path == "/echo":
            return self.answer(500, "you sent " + self.headers.get("X-chkp-shared-secret", ""))
        if self.headers.get("X-chkp-shared-secret") != secret:
            return self.answer(401, "wrong shared secret")
        timestamp = self.headers.get("X-Rampart-Timestamp", "")
        event_id = self.headers.get("X-Rampart-Event-Id", "")
        expected = "sha256=" + hmac.new(secret.encode(), timestamp.encode() + b"." + body, hashlib.sha256).hexdigest()
        if not hmac.compare_digest(expected, self.headers.get("X-Rampart-Signature", "")):
            return self.answer(401, "bad signature")
        if abs(time.time() - int(timestamp)) > 300:
            return self.answer(401, "stale timestamp")
        with lock:
            if event_id in seen:
                return self.answer(409, "replayed event " + event_id)
            seen.add(event_id)
            with open(out, "a") as f:
                f.write(body.decode() + "\n")
        self.answer(200, "accepted " + event_id)

server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
context.load_cert_chain(cert, key)
server.socket = context.wrap_socket(server.socket, server_side=True)
with open(port_file + ".tmp", "w") as f:
    f.write(str(server.server_address[1]))
import os
os.rename(port_file + ".tmp", port_file)
server.serve_forever()
