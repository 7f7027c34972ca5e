#!/usr/bin/env python3
"""rest_client.py: a Python client (standard library only: http.client + ssl) against shakend's
REST front end (docs/rest-api.md), run by tests/rest_test.cc. Every request of the main
session goes over one keep-alive connection, which is checked to stay the same socket.
Exits 0 when every check passed, 1 otherwise (each failure is printed)."""
import argparse
import http.client
import json
import ssl
import sys
import time

FAILURES = []


def check(cond, what):
    if not cond:
        FAILURES.append(what)
        print("FAIL:", what)


def context(args, cert, key):
    ctx = ssl.create_default_context(cafile=args.ca)
    if cert:
        ctx.load_cert_chain(cert, key)
    return ctx


def post(conn, path, body, headers=None):
    h = {"Content-Type": "application/json"}
    h.update(headers or {})
    data = body if isinstance(body, (bytes, str)) else json.dumps(body)
    conn.request("POST", path, body=data, headers=h)
    resp = conn.getresponse()
    raw = resp.read()
    try:
        doc = json.loads(raw)
    except ValueError:
        doc = None
    return resp.status, dict(resp.getheaders()), doc


def main():
    p = argparse.ArgumentParser()
    for a in ("--port", "--ca", "--cert", "--key", "--untrusted-cert", "--untrusted-key", "--x5u"):
        p.add_argument(a, required=True)
    args = p.parse_args()
    port = int(args.port)
    conn = http.client.HTTPSConnection("localhost", port, timeout=10,
                                       context=context(args, args.cert, args.key))
    now = int(time.time())

    # ATIS-1000082 signing, every field.
    status, headers, doc = post(conn, "/stir/v1/signing", {"signingRequest": {
        "attest": "A", "orig": {"tn": "12155550121"}, "dest": {"tn": ["12155550131"]},
        "iat": now, "origid": "123e4567-e89b-12d3-a456-426655440000"}},
        {"X-RequestID": "py-1", "Accept": "application/json"})
    check(status == 200, "signing: status %s %s" % (status, doc))
    sock = conn.sock
    check(headers.get("X-RequestID") == "py-1", "signing: X-RequestID echoed")
    identity = (doc or {}).get("signingResponse", {}).get("identity", "")
    check(identity.endswith(";info=<%s>;alg=ES256;ppt=shaken" % args.x5u),
          "signing: identity %r" % identity)

    # ATIS verification: passed, then failed (still HTTP 200) with every reason field.
    status, _, doc = post(conn, "/stir/v1/verification", {"verificationRequest": {
        "from": {"tn": "12155550121"}, "to": {"tn": ["12155550131"]}, "time": now,
        "identity": identity}})
    check(status == 200 and doc == {"verificationResponse": {"verstat": "TN-Validation-Passed"}},
          "verification passed: %s %s" % (status, doc))
    status, _, doc = post(conn, "/stir/v1/verification", {"verificationRequest": {
        "from": {"tn": "12155550121"}, "to": {"tn": ["19995550000"]}, "time": now,
        "identity": identity}})
    r = (doc or {}).get("verificationResponse", {})
    check(status == 200 and r.get("reasoncode") == 438 and r.get("verstat") == "No-TN-Validation"
          and r.get("reasontext") == "Invalid Identity Header" and r.get("reasondesc"),
          "verification failed (dest mismatch): %s %s" % (status, doc))
    status, _, doc = post(conn, "/stir/v1/verification", {"verificationRequest": {
        "from": {"tn": "12155550121"}, "to": {"tn": ["12155550131"]}, "time": now - 3600,
        "identity": identity}})
    r = (doc or {}).get("verificationResponse", {})
    check(status == 200 and r.get("reasoncode") == 403 and r.get("reasontext") == "Stale Date",
          "verification stale date: %s %s" % (status, doc))

    # The heartbeat.
    status, _, doc = post(conn, "/stir/v1/verification", {"verificationRequest": {}})
    check(status == 200 and doc["verificationResponse"]["reasoncode"] == 428,
          "heartbeat: %s %s" % (status, doc))

    # 3GPP Ms names.
    status, _, doc = post(conn, "/stir/v1/signing", {"signingRequest": {
        "attest": "B", "orig": {"tn": "12155550121"}, "dest": {"tn": ["12155550131"]},
        "iat": now, "requestId": "ms-py"}})
    sr = (doc or {}).get("signingResponse", {})
    check(status == 200 and "identityHeader" in sr and sr.get("requestId") == "ms-py"
          and "identity" not in sr, "Ms signing: %s %s" % (status, doc))
    status, _, doc = post(conn, "/stir/v1/verification", {"verificationRequest": {
        "identityHeader": sr.get("identityHeader", ""), "from": {"tn": "12155550121"},
        "to": {"tn": "12155550131"}, "time": now, "requestId": "ms-py2"}})
    vr = (doc or {}).get("verificationResponse", {})
    check(status == 200 and vr.get("verstatValue") == "TN-Validation-Passed"
          and vr.get("requestId") == "ms-py2"
          and vr.get("verifyResults") == [{"verifyResult": {"ppt": "shaken", "status": "pass"}}],
          "Ms verification: %s %s" % (status, doc))

    # Error documents, on the same connection.
    def error(path, body, headers, want_status, want_id, kind="serviceException"):
        status, _, doc = post(conn, path, body, headers)
        e = ((doc or {}).get("requestError") or {}).get(kind) or {}
        check(status == want_status and e.get("messageId") == want_id,
              "%s: want %s %s, got %s %s" % (want_id, want_status, kind, status, doc))
    error("/stir/v1/signing", "{", {}, 400, "SVC4006")
    error("/stir/v1/signing", {"signingRequest": {"attest": "A"}}, {}, 400, "SVC4001")
    error("/stir/v1/signing", {"signingRequest": {"attest": "X", "orig": {"tn": "1"},
                                                  "dest": {"tn": ["2"]}}}, {}, 400, "SVC4005")
    error("/stir/v1/signing", "{}", {"Content-Type": "application/xml"}, 415, "SVC4004")
    error("/stir/v1/signing", "{}", {"Accept": "text/plain"}, 406, "SVC4002")
    error("/nowhere", "{}", {}, 404, "SVC4003")
    check(conn.sock is sock, "keep-alive: every request on one connection")
    conn.close()

    # 413 closes its connection (the body is not read).
    big = http.client.HTTPSConnection("localhost", port, timeout=10,
                                      context=context(args, args.cert, args.key))
    status, _, doc = post(big, "/stir/v1/signing", "x" * 5000)
    check(status == 413, "413: %s %s" % (status, doc))
    big.close()

    # mTLS: no certificate, an untrusted one.
    for name, cert, key in (("no certificate", None, None),
                            ("untrusted", args.untrusted_cert, args.untrusted_key)):
        c = http.client.HTTPSConnection("localhost", port, timeout=10,
                                        context=context(args, cert, key))
        try:
            status, _, doc = post(c, "/stir/v1/signing", {"signingRequest": {}})
            e = ((doc or {}).get("requestError") or {}).get("policyException") or {}
            check(status == 403 and e.get("messageId") == "POL4030",
                  "mTLS %s: %s %s" % (name, status, doc))
        finally:
            c.close()

    if FAILURES:
        print("rest_client: %d checks failed" % len(FAILURES))
        return 1
    print("rest_client: all checks passed")
    return 0


if __name__ == "__main__":
    sys.exit(main())
