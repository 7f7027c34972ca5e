#!/usr/bin/env python3
"""make_seeds.py: writes the seed corpora of tests/fuzz/corpus/ from the conformance cases.

    tests/fuzz/make_seeds.py            # rewrite tests/fuzz/corpus/{identity_header,passport,json,
                                        # tn_auth_list,x5u_chain,pkcs11_uri,config}/seed-*

Each conformance case (conformance/cases/*.json) is materialized the way its recipe reads
(conformance/README.md), without a key: header and payload JSON (templates, patches, exact text),
the JWS (signature bytes are a fixed 64-byte filler: the fuzzers never check signatures), the
mutations that change bytes, and the Identity header template. The RFC vectors
(conformance/vectors/rfc_vectors.json) are added as they are. Certificate seeds (x5u_chain) are
made with the openssl command from the cases' TNAuthList contexts, so they change at every run:
run this script only to refresh the seeds, and commit the result. Crash inputs found by fuzzing
are kept as corpus/<target>/crash-* and are never touched here.
"""
import base64
import glob
import hashlib
import json
import os
import re
import subprocess
import sys
import tempfile

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
CORPUS = os.path.join(ROOT, "tests", "fuzz", "corpus")
MAX_PER_TARGET = 48

X5U = "https://cert.example.org/passport.cer"
IAT = 1443208345
ORIGID = "123e4567-e89b-12d3-a456-426655440000"
SIG = bytes(range(64))
DEFAULT_HEADER = {"alg": "ES256", "ppt": "shaken", "typ": "passport", "x5u": "$x5u"}
DEFAULT_PAYLOAD = {"attest": "A", "dest": {"tn": ["12155550131"]}, "iat": "$iat",
                   "orig": {"tn": "12155550121"}, "origid": "$origid"}


def b64u(b):
    return base64.urlsafe_b64encode(b).rstrip(b"=").decode()


def canonical(v):
    return json.dumps(v, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def placeholders(v):
    if isinstance(v, dict):
        return {k: placeholders(x) for k, x in v.items()}
    if isinstance(v, list):
        return [placeholders(x) for x in v]
    if v == "$x5u":
        return X5U
    if v == "$iat":
        return IAT
    if v == "$iat_str":
        return str(IAT)
    if v == "$origid":
        return ORIGID
    if v == "$dest33":
        return {"tn": ["1215555%04d" % i for i in range(33)]}
    if v == "$deep40":
        d = {}
        for _ in range(40):
            d = {"a": d}
        return d
    return v


def patched(base, patch):
    out = dict(base)
    for k, v in (patch or {}).items():
        if v is None:
            out.pop(k, None)
        else:
            out[k] = v
    return out


def text_template(t):
    return (t.replace("{x5u_escaped}", X5U.replace("/", "\\/")).replace("{x5u}", X5U)
             .replace("{iat}", str(IAT)).replace("{origid}", ORIGID).replace("{bad_utf8}", "\udcff"))


def to_bytes(s):
    return s.encode("utf-8", "surrogateescape")


def materialize(recipe, vectors):
    """Returns (header_json, payload_json, jws, identity) as bytes; any may be None."""
    if "raw_identity" in recipe:
        raw = recipe["raw_identity"]
        for name, vec in vectors.items():
            if isinstance(vec, dict):
                for k, v in vec.items():
                    raw = raw.replace("{%s.%s}" % (name, k), str(v))
        return None, None, None, to_bytes(raw)
    header = placeholders(patched(recipe.get("header", DEFAULT_HEADER), recipe.get("header_patch")))
    payload = placeholders(patched(recipe.get("payload", DEFAULT_PAYLOAD),
                                   recipe.get("payload_patch")))
    if "iat_offset" in recipe and isinstance(payload.get("iat"), int):
        payload["iat"] += recipe["iat_offset"]
    h = to_bytes(text_template(recipe["header_text"])) if "header_text" in recipe else \
        to_bytes(canonical(header))
    p = to_bytes(text_template(recipe["payload_text"])) if "payload_text" in recipe else \
        to_bytes(canonical(payload))
    if recipe.get("pad_payload_bytes"):
        p = p[:-1] + b',"pad":"' + b"x" * recipe["pad_payload_bytes"] + b'"}'
    segs = [b64u(h), b64u(p), b64u(SIG)]
    seg = lambda m: {"header": 0, "payload": 1, "sig": 2}[m.get("segment", "sig")]
    for m in recipe.get("mutations", []):
        op = m["op"]
        if op == "replace_payload_patch":
            segs[1] = b64u(to_bytes(canonical(patched(payload, m["patch"]))))
        elif op == "replace_header_patch":
            segs[0] = b64u(to_bytes(canonical(patched(header, m["patch"]))))
        elif op == "flip_sig_bit":
            segs[2] = b64u(bytes([SIG[0] ^ 1]) + SIG[1:])
        elif op == "append":
            segs[seg(m)] += m.get("text", "")
        elif op == "pad_segment":
            segs[seg(m)] += "="
        elif op == "set_char":
            s, i = segs[seg(m)], m.get("index", 0)
            segs[seg(m)] = s[:i] + m.get("char", "!") + s[i + 1:]
        elif op == "trailing_bits":
            s = segs[seg(m)]  # the last character with its unused low bits set
            segs[seg(m)] = s[:-1] + ("B" if s[-1] != "B" else "C")
        elif op == "compact":
            segs[0] = segs[1] = ""
        elif op == "drop_sig":
            segs = segs[:2]
        elif op == "extra_segment":
            segs.append(b64u(b"x"))
        elif op == "empty_sig":
            segs[2] = ""
    jws = ".".join(segs)
    info = X5U
    ident = recipe.get("identity", "{jws};info=<{info}>;alg=ES256;ppt=shaken")
    ident = ident.replace("{jws}", jws).replace("{info}", info)
    return h, p, jws.encode(), to_bytes(ident)


def der_len(n):
    if n < 0x80:
        return bytes([n])
    b = n.to_bytes((n.bit_length() + 7) // 8, "big")
    return bytes([0x80 | len(b)]) + b


def tlv(tag, body):
    return bytes([tag]) + der_len(len(body)) + body


def tn_auth_list_der(entries):
    out = b""
    for e in entries:
        if "spc" in e:
            out += tlv(0xA0, tlv(0x16, e["spc"].encode()))
        elif "one" in e or "tn" in e:
            out += tlv(0xA2, tlv(0x16, (e.get("one") or e["tn"]).encode()))
        elif "start" in e:
            n = e["count"].to_bytes((e["count"].bit_length() + 8) // 8, "big")
            out += tlv(0xA1, tlv(0x30, tlv(0x16, e["start"].encode()) + tlv(0x02, n)))
    return tlv(0x30, out)


class Seeds:
    def __init__(self):
        self.by_target = {}

    def add(self, target, data):
        if data is None:
            return
        lst = self.by_target.setdefault(target, [])
        if data not in lst:
            lst.append(data)

    def write(self):
        for target, items in self.by_target.items():
            d = os.path.join(CORPUS, target)
            os.makedirs(d, exist_ok=True)
            for f in glob.glob(os.path.join(d, "seed-*")):
                os.remove(f)
            for data in items[:MAX_PER_TARGET]:
                name = "seed-" + hashlib.sha1(data).hexdigest()[:16]
                with open(os.path.join(d, name), "wb") as f:
                    f.write(data)
            print("%-16s %d seeds" % (target, min(len(items), MAX_PER_TARGET)))


def openssl(*args, cwd):
    subprocess.run(["openssl", *args], cwd=cwd, check=True, stdout=subprocess.DEVNULL,
                   stderr=subprocess.DEVNULL)


def cert_chains(tn_lists):
    """PEM chains (leaf + intermediate, root not included) with the given TNAuthList DER values."""
    out = []
    with tempfile.TemporaryDirectory() as t:
        def key(name):
            openssl("ecparam", "-name", "prime256v1", "-genkey", "-noout", "-out", name, cwd=t)
        key("root.key")
        key("ica.key")
        key("leaf.key")
        with open(os.path.join(t, "ca.ext"), "w") as f:
            f.write("basicConstraints=critical,CA:TRUE\nkeyUsage=critical,keyCertSign,cRLSign\n"
                    "subjectKeyIdentifier=hash\n")
        openssl("req", "-x509", "-new", "-key", "root.key", "-subj", "/CN=Fuzz STI-PA Root",
                "-days", "3650", "-sha256", "-out", "root.pem", cwd=t)
        openssl("req", "-new", "-key", "ica.key", "-subj", "/CN=Fuzz STI-CA", "-out", "ica.csr",
                cwd=t)
        openssl("x509", "-req", "-in", "ica.csr", "-CA", "root.pem", "-CAkey", "root.key",
                "-set_serial", "2", "-days", "3650", "-sha256", "-extfile", "ca.ext",
                "-out", "ica.pem", cwd=t)
        ica = open(os.path.join(t, "ica.pem"), "rb").read()
        openssl("req", "-new", "-key", "leaf.key", "-subj", "/C=US/O=Fuzz SP/CN=SHAKEN 709J",
                "-out", "leaf.csr", cwd=t)
        for i, der in enumerate(tn_lists):
            with open(os.path.join(t, "leaf.ext"), "w") as f:
                f.write("basicConstraints=critical,CA:FALSE\nkeyUsage=critical,digitalSignature\n"
                        "certificatePolicies=2.16.840.1.114569.1.1.3\n"
                        "1.3.6.1.5.5.7.1.26=DER:%s\n" % der.hex())
            openssl("x509", "-req", "-in", "leaf.csr", "-CA", "ica.pem", "-CAkey", "ica.key",
                    "-set_serial", str(100 + i), "-days", "3650", "-sha256", "-extfile",
                    "leaf.ext", "-out", "leaf.pem", cwd=t)
            leaf = open(os.path.join(t, "leaf.pem"), "rb").read()
            out.append(leaf + ica)
            if i == 0:
                out.append(leaf)                     # chain: leaf_only
                out.append(ica + leaf)               # chain: reversed
                out.append(leaf + ica + b"trailing garbage\n")  # x5u_server: trailing_garbage
                body = b"".join(leaf.split(b"\n")[1:-2])
                out.append(base64.b64decode(body))   # x5u_server: der
        out.append(b"<html><body>Not Found</body></html>\n")  # x5u_server: html
        out.append(b"")                                      # x5u_server: empty
    return out


def main():
    vectors = json.load(open(os.path.join(ROOT, "conformance", "vectors", "rfc_vectors.json")))
    seeds = Seeds()
    tn_lists = [tn_auth_list_der([{"spc": "709J"}])]
    for path in sorted(glob.glob(os.path.join(ROOT, "conformance", "cases", "*.json"))):
        for case in json.load(open(path))["cases"]:
            recipes = case.get("input", {}).get("identities")
            if not isinstance(recipes, list):
                recipes = [case.get("input", {})]
            for r in recipes:
                h, p, jws, ident = materialize(r, vectors)
                seeds.add("json", h)
                seeds.add("json", p)
                seeds.add("passport", jws)
                seeds.add("identity_header", ident)
            cert = case.get("context", {}).get("cert", {})
            if "tn_auth_list_der_hex" in cert:
                tn_lists.append(bytes.fromhex(cert["tn_auth_list_der_hex"]))
            if isinstance(cert.get("tn_auth_list"), list):
                tn_lists.append(tn_auth_list_der(cert["tn_auth_list"]))
            if "spc" in cert:
                tn_lists.append(tn_auth_list_der([{"spc": cert["spc"]}]))
    for name in ("V2", "V3"):
        seeds.add("passport", vectors[name]["jws"].encode())
    seeds.add("identity_header", vectors["V4"]["identity"].encode())
    seeds.add("passport", vectors["V4"]["identity"].split(";")[0].encode())
    for name in ("V1", "V4", "V5"):
        for k in ("header_json", "payload_json"):
            if isinstance(vectors.get(name), dict) and k in vectors[name]:
                seeds.add("json", vectors[name][k].encode())
    for der in tn_lists:
        seeds.add("tn_auth_list", der)
    for chain in cert_chains(tn_lists[:6]):
        seeds.add("x5u_chain", chain)
    # PKCS#11 URIs: the forms the docs and tests configure (pin-value comes from the dictionary).
    for uri in ["pkcs11:token=shaken;object=sp-key-1;type=private",
                "pkcs11:token=shaken;object=sp-key-1?pin-source=file:/etc/shakend/pin",
                "pkcs11:model=SoftHSM%20v2;manufacturer=SoftHSM%20project;serial=0123456789abcdef;"
                "token=shaken",
                "pkcs11:slot-id=3;id=%01%02%03;type=private",
                "pkcs11:token=shaken;object=k?module-path=/usr/lib/softhsm/libsofthsm2.so",
                "pkcs11:token=sh%61ken;object=sp%3Bkey;type=public?pin-source=/run/secrets/pin",
                "pkcs11:library-manufacturer=OpenSC;library-version=0.23;type=cert"]:
        seeds.add("pkcs11_uri", uri.encode())
    # Configurations: the example configuration and small variants of each section.
    example = open(os.path.join(ROOT, "deploy", "shakend.example.yaml"), "rb").read()
    seeds.add("config", example)
    # ... and the YAML raw strings of the configuration tests and the daemon test fixture.
    for src in ("daemon/config_test.cc", "tests/daemon_fixture.cc"):
        text = open(os.path.join(ROOT, src)).read()
        for chunk in re.findall(r'R"\((.*?)\)"', text, re.S):
            # No seed carries a PIN, not even a test's made-up one: the pkcs11_uri dictionary
            # gives the fuzzer the pin-value= keyword instead.
            if "pin-value" in chunk:
                continue
            if "listen:" in chunk or "profiles:" in chunk or "verifier:" in chunk:
                seeds.add("config", chunk.encode())
    seeds.write()


if __name__ == "__main__":
    sys.exit(main())
