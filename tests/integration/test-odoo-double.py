"""The Odoo double against the recorded Odoo 17 session (tests/data/odoo17): every request, replayed
in order on a fresh double, gets the recorded answer: the same value (timestamps aside) or the same
fault code and last line. A double that drifts from the real server fails here first."""

import glob
import os
import re
import subprocess
import sys
import urllib.request
import xmlrpc.client

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import done, ok  # noqa: E402

top = os.environ.get("TOP_SRCDIR", ".")
fx = os.path.join(top, "tests", "data", "odoo17")
DATETIME = re.compile(r"^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d$")


def norm(v):
    if isinstance(v, str) and DATETIME.match(v):
        return "<datetime>"
    if isinstance(v, dict):
        return {k: norm(x) for k, x in v.items()}
    if isinstance(v, (list, tuple)):
        return [norm(x) for x in v]
    return v


def body_of(path):
    raw = open(path, "rb").read()
    return raw.split(b"\r\n\r\n", 1)[1] if b"\r\n\r\n" in raw else raw.split(b"\n\n", 1)[1]


def answer(raw):
    try:
        (r,), _ = xmlrpc.client.loads(raw, use_builtin_types=True)
        return ("ok", norm(r))
    except xmlrpc.client.Fault as e:
        last = [l for l in e.faultString.strip().splitlines() if l.strip()][-1].strip()
        return ("fault", e.faultCode, last if e.faultCode == 1 else e.faultString.strip())


double = subprocess.Popen([sys.executable, os.path.join(top, "tests", "fakes", "odoo.py")], stdout=subprocess.PIPE,
                          text=True)
try:
    port = int(double.stdout.readline().split()[1])
    reqs = sorted(glob.glob(os.path.join(fx, "*.request.xml")))
    ok(len(reqs) >= 43, "%d recorded requests" % len(reqs))
    for req in reqs:
        raw = open(req, "rb").read()
        params, method = xmlrpc.client.loads(raw)
        path = "/xmlrpc/2/common" if method in ("version", "authenticate", "login") else "/xmlrpc/2/object"
        got = urllib.request.urlopen(urllib.request.Request("http://127.0.0.1:%d%s" % (port, path), data=raw,
                                                            headers={"Content-Type": "text/xml"})).read()
        want = answer(body_of(req.replace(".request.xml", ".response.http")))
        have = answer(got)
        name = os.path.basename(req).replace(".request.xml", "")
        ok(have == want, "%s answers as recorded" % name, "want %r\ngot  %r" % (want, have))
finally:
    double.terminate()
    double.wait()
done()
