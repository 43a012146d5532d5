#!/usr/bin/env python3
"""Hostile input to a Rampart server's SIC port (issue 18): connections that are not TLS, TLS without a
client certificate carrying malformed frames and malformed enrolment messages, TLS with a certificate
from another CA. After each connection the server must still accept connections; at the end it prints
one JSON object: requests by kind, and how each ended (closed by the server, refused, timed out).

Usage: sic_fuzz.py HOST PORT [SEED]   (exit 1 if the port stopped accepting connections)
"""
import json
import os
import random
import socket
import ssl
import struct
import subprocess
import sys
import tempfile
import time

HOST, PORT = sys.argv[1], int(sys.argv[2])
rng = random.Random(int(sys.argv[3]) if len(sys.argv) > 3 else 18)
counts = {}
endings = {}
TIMEOUT_S = 10.0


def frame(kind, payload, length=None):
    length = len(payload) if length is None else length
    return b"RMP" + bytes([1, kind]) + struct.pack(">I", length & 0xFFFFFFFF) + payload


def field(data, length=None):
    return struct.pack(">I", (len(data) if length is None else length) & 0xFFFFFFFF) + data


def request(name=b"gw-x", csr=b"\x30\x03\x02\x01\x00", nonce=None, time_ms=0, proof=None, version=1, kind=1, tail=b""):
    nonce = os.urandom(32) if nonce is None else nonce
    proof = os.urandom(32) if proof is None else proof
    return (b"RSIC" + bytes([version, kind]) + field(name) + field(csr) + field(nonce)
            + struct.pack(">q", time_ms) + field(proof) + tail)


def hostile_enrolments():
    yield "random bytes", os.urandom(rng.randint(0, 4000))
    yield "empty payload", b""
    yield "wrong magic", b"XSIC" + os.urandom(40)
    yield "unknown version", request(version=9)
    yield "unknown kind", request(kind=7)
    yield "response from a client", request(kind=2)
    yield "name with newline and NUL", request(name=b"gw\nFORGED line\x00\x1b[31m")
    yield "name of 10 KB", request(name=b"n" * 10_000)
    yield "name not UTF-8", request(name=b"\xff\xfe\xc0\x80")
    yield "empty name", request(name=b"")
    yield "csr not DER", request(csr=os.urandom(300))
    yield "csr huge", request(csr=os.urandom(8_000))
    yield "nonce of 1 byte", request(nonce=b"\x01")
    yield "proof of 0 bytes", request(proof=b"")
    yield "time at Int64 min", request(time_ms=-(2 ** 63))
    yield "time at Int64 max", request(time_ms=2 ** 63 - 1)
    yield "length past the end", b"RSIC" + bytes([1, 1]) + field(b"gw", length=0xFFFFFFF0)
    yield "trailing bytes", request(tail=b"\x00" * 17)
    yield "truncated request", request()[: rng.randint(6, 60)]


def hostile_frames():
    yield "bad magic", b"XYZ" + os.urandom(30)
    yield "unknown frame version", b"RMP" + bytes([7, 3]) + struct.pack(">I", 1) + b"x"
    for kind in (0, 1, 2, 4, 5, 255):
        yield f"frame type {kind} before verification", frame(kind, b"{}")
    yield "length 2^32-1", frame(3, b"", length=0xFFFFFFFF)
    yield "length 16 MiB", frame(3, b"", length=16 << 20)
    yield "length 64 KiB, then silence", frame(3, b"", length=64 << 10)
    yield "header only, then silence", b"RMP\x01\x03"
    yield "two enrolment frames", frame(3, request()) + frame(3, request())
    yield "20 frames in a row", b"".join(frame(3, os.urandom(50)) for _ in range(20))
    for kind, payload in hostile_enrolments():
        yield "enrolment: " + kind, frame(3, payload)


def note(kind, ending):
    counts[kind] = counts.get(kind, 0) + 1
    endings[ending] = endings.get(ending, 0) + 1


def drain(sock):
    """Reads until the server closes (or the bound passes): how the connection ended."""
    deadline = time.monotonic() + TIMEOUT_S
    try:
        while time.monotonic() < deadline:
            sock.settimeout(max(0.05, deadline - time.monotonic()))
            data = sock.recv(65536)
            if not data:
                return "closed by the server"
        return "still open after 10 s"
    except socket.timeout:
        return "still open after 10 s"
    except (ConnectionError, ssl.SSLError, OSError):
        return "reset or refused by the server"


def send_raw(kind, data):
    with socket.create_connection((HOST, PORT), timeout=TIMEOUT_S) as sock:
        try:
            sock.sendall(data)
        except OSError:
            note(kind, "reset or refused by the server")
            return
        note(kind, drain(sock))


def tls_context(cert=None):
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    context.minimum_version = ssl.TLSVersion.TLSv1_3
    if cert:
        context.load_cert_chain(*cert)
    return context


def send_tls(kind, data, cert=None):
    raw = socket.create_connection((HOST, PORT), timeout=TIMEOUT_S)
    try:
        sock = tls_context(cert).wrap_socket(raw)
    except (ssl.SSLError, OSError):
        raw.close()
        note(kind, "TLS refused by the server")
        return
    with sock:
        try:
            sock.sendall(data)
        except (ssl.SSLError, OSError):
            note(kind, "reset or refused by the server")
            return
        note(kind, drain(sock))


def foreign_certificate(directory):
    key, cert = os.path.join(directory, "key.pem"), os.path.join(directory, "cert.pem")
    subprocess.run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
                    "-keyout", key, "-out", cert, "-days", "1", "-subj", "/CN=intruder"],
                   check=True, capture_output=True)
    return cert, key


def alive():
    try:
        with socket.create_connection((HOST, PORT), timeout=TIMEOUT_S):
            return True
    except OSError:
        return False


def main():
    plain = [("not TLS: random bytes", os.urandom(2000)), ("not TLS: an HTTP request", b"GET / HTTP/1.1\r\nHost: x\r\n\r\n"),
             ("not TLS: a Rampart frame in clear", frame(3, request())), ("not TLS: nothing", b"")]
    for kind, data in plain:
        send_raw(kind, data)
    # Five rounds: random contents differ every round; the slow cases (silence) run once.
    for round_number in range(5):
        for kind, data in hostile_frames():
            if round_number > 0 and "silence" in kind:
                continue
            send_tls(kind, data)
            if not alive():
                print(json.dumps({"dead-after": kind, "counts": counts, "endings": endings}))
                return 1
    with tempfile.TemporaryDirectory() as directory:
        try:
            cert = foreign_certificate(directory)
        except (OSError, subprocess.CalledProcessError):
            cert = None
        if cert:
            for _ in range(3):
                send_tls("TLS with another CA's certificate", frame(4, b'{"type":"ha"}'), cert=cert)
    ok = alive()
    print(json.dumps({"alive": ok, "requests": sum(counts.values()), "counts": counts, "endings": endings}, sort_keys=True))
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
