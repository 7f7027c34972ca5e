#!/usr/bin/env bash
# check-references.sh [SOURCE_DIR]: the repository must speak for itself. Fails (exit 1, one line
# per finding) when a tracked file
#   - points outside the repository at the private standards notes it once cited, or cites an
#     internal work ticket ("issue N §M");
#   - links docs/standards.md#<anchor> (or, inside docs/standards.md, #<anchor>) and no heading or
#     <a id> there makes that anchor;
#   - cites a requirement ID (PP-1, SH-10, CE-8, ...), a pitfall P<n> or an ATIS-1000082 case E<n>
#     that docs/standards.md does not define;
# or when an ID of conformance/requirements.json is missing from docs/standards.md.
# Files: `git ls-files` when SOURCE_DIR is a git checkout, else every file outside build*/ and
# dot-directories. CTest: docs_references_resolve (label unit).
set -euo pipefail
root="${1:-$(cd "$(dirname "$0")/.." && pwd)}"
exec python3 - "$root" <<'PY'
import json, os, re, subprocess, sys

root = sys.argv[1]
DOC = "docs/standards.md"

def tracked_files():
    try:
        out = subprocess.run(["git", "-C", root, "ls-files", "-z"], check=True,
                             capture_output=True).stdout.decode()
        return [f for f in out.split("\0") if f]
    except (OSError, subprocess.CalledProcessError):
        files = []
        for d, dirs, names in os.walk(root):
            rel = os.path.relpath(d, root)
            dirs[:] = [x for x in dirs if not x.startswith(".") and
                       not (rel == "." and x.startswith("build"))]
            files += [os.path.normpath(os.path.join(rel, n)) for n in names]
        return files

def read_text(path):
    try:
        with open(os.path.join(root, path), "rb") as f:
            data = f.read()
    except OSError:
        return None  # listed but absent (e.g. deleted in the work tree)
    if b"\0" in data:
        return None
    return data.decode("utf-8", errors="replace")

def slug(heading):
    # GitHub's heading anchors: lower case, punctuation dropped, spaces to '-'.
    s = re.sub(r"[^\w\- ]", "", heading.strip().lower())
    return s.replace(" ", "-")

problems = []
def problem(path, lineno, msg):
    problems.append(f"{path}:{lineno}: {msg}")

doc = read_text(DOC)
if doc is None:
    print(f"check-references: {DOC} is missing", file=sys.stderr)
    sys.exit(1)

anchors, seen = set(), {}
in_fence = False
for line in doc.splitlines():
    if line.startswith("```"):
        in_fence = not in_fence
        continue
    if in_fence:
        continue
    m = re.match(r"#{1,6}\s+(.*?)\s*#*\s*$", line)
    if m:
        base = slug(m.group(1))
        n = seen.get(base, 0)
        seen[base] = n + 1
        anchors.add(base if n == 0 else f"{base}-{n}")
    anchors.update(re.findall(r"<a\s+(?:id|name)=\"([^\"]+)\"", line))

# What docs/standards.md defines: requirement IDs as the first cell of a table row, pitfalls and
# error cases by their headings / table rows.
ID_RE = re.compile(r"\b(?:PP|ID|SH|CE|DL|DIV|RPH|RCD)-[0-9]+\b")
defined_ids = set(re.findall(r"^\|\s*((?:PP|ID|SH|CE|DL|DIV|RPH|RCD)-[0-9]+)\s*\|", doc, re.M))
defined_pitfalls = set(re.findall(r"^#{2,6}\s+(P[0-9]+)\b", doc, re.M))
defined_cases = set(re.findall(r"^\|\s*(E[0-9]+)\s*\|", doc, re.M))

FORBIDDEN = [
    (re.compile(r"\.\./shared/"), "points outside the repository (cite docs/standards.md)"),
    (re.compile(r"shared/standards\.md"), "cites the private notes file (cite docs/standards.md)"),
    (re.compile(r"\b[Ii]ssue #?[0-9]+ ?§"),
     "cites an internal work ticket (say what it means, or cite docs/standards.md or the spec)"),
]
LINK_RE = re.compile(r"standards\.md#([\w-]+)")
LOCAL_LINK_RE = re.compile(r"\]\(#([\w-]+)\)")
PITFALL_RE = re.compile(r"\bP([0-9]{1,2})\b")
CASE_RE = re.compile(r"\bE([0-9]{1,2})\b")

for path in tracked_files():
    text = read_text(path)
    if text is None:
        continue
    for lineno, line in enumerate(text.splitlines(), 1):
        for rx, msg in FORBIDDEN:
            if rx.search(line):
                problem(path, lineno, msg)
        links = LINK_RE.findall(line)
        if path == DOC:
            links += LOCAL_LINK_RE.findall(line)
        for a in links:
            if a not in anchors:
                problem(path, lineno, f"{DOC} has no anchor #{a}")
        for i in ID_RE.findall(line):
            if i not in defined_ids:
                problem(path, lineno, f"requirement {i} is not defined in {DOC}")
        for n in PITFALL_RE.findall(line):
            if f"P{n}" not in defined_pitfalls:
                problem(path, lineno, f"pitfall P{n} is not defined in {DOC}")
        for n in CASE_RE.findall(line):
            if f"E{n}" not in defined_cases:
                problem(path, lineno, f"error case E{n} is not defined in {DOC}")

req_path = "conformance/requirements.json"
req_text = read_text(req_path)
if req_text is not None:
    for r in json.loads(req_text).get("requirements", []):
        if r.get("id") not in defined_ids:
            problem(req_path, 1, f"requirement {r.get('id')} is not defined in {DOC}")

for p in problems:
    print(p)
if problems:
    print(f"check-references: {len(problems)} problem(s)", file=sys.stderr)
    sys.exit(1)
print(f"check-references: ok ({len(anchors)} anchors, {len(defined_ids)} requirement IDs, "
      f"{len(defined_pitfalls)} pitfalls, {len(defined_cases)} error cases)")
PY
