"""The Odoo double against the recorded Odoo 17 session (tests/data/odoo17): every request, replayed
in order on a fresh double, gets the recorded answer: the same value (timestamps aside) or the same
fault code and last line. A double that drifts from the real server fails here first.

Then Odoo 19's JSON-2 (tests/data/odoo19, raw HTTP in the order it was recorded): on a fresh double at version 19,
each request gets the recorded status, Content-Type and WWW-Authenticate, and the same body: for a JSON error the
same name, message and arguments with a traceback as debug, otherwise the same bytes or JSON value."""

import glob
import http.client
import json
import os
import re
import subprocess
import sys
import urllib.request
import xmlrpc.client

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import done, is_eq, ok  # noqa: E402

top = os.environ.get("TOP_SRCDIR", ".")
fx = os.path.join(top, "tests", "data", "odoo17")
fx19 = os.path.join(top, "tests", "data", "odoo19")
DATETIME = re.compile(r"^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d$")
# Recorded JSON-2 answers the double does not give yet, for reasons outside its JSON-2 transport (odoo_json2.py):
# reported as SKIP with the reason while they differ, checked like the others once they match.
KNOWN19 = {}


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


def http_message(path):
    """A recorded request or response: its first line, headers (a dict, lower-case names) and body."""
    head, body = open(path, "rb").read().split(b"\r\n\r\n", 1)
    first, *lines = head.decode().split("\r\n")
    return first, {k.lower(): v.strip() for k, _, v in (l.partition(":") for l in lines)}, body


def json2_answer(status, headers, body, path):
    """What must match: the status, Content-Type, WWW-Authenticate, and the body: for Odoo's JSON errors their
    name, message and arguments and a traceback as debug, otherwise the JSON value or the bytes."""
    seen = (status, headers.get("content-type"), headers.get("www-authenticate"))
    if not headers.get("content-type", "").startswith("application/json"):
        return seen + (body,)
    value = json.loads(body)
    if isinstance(value, dict) and "debug" in value:
        return seen + ({k: value.get(k) for k in ("name", "message", "arguments")},
                       str(value["debug"]).startswith("Traceback"))
    if path.endswith("/message_post") and status == 200:
        value = ["<message id>" for _ in value]  # the database's past decides the number
    return seen + (value,)


double = subprocess.Popen([sys.executable, os.path.join(top, "tests", "fakes", "odoo.py")], stdout=subprocess.PIPE,
                          text=True)
try:
    port = int(double.stdout.readline().split()[1])
    reqs = sorted(glob.glob(os.path.join(fx, "*.request.xml")))
    ok(len(reqs) >= 43, "%d recorded requests" % len(reqs))

    def product_module(on):
        """The product series was recorded on a database with the product module, its last file on one without."""
        urllib.request.urlopen(urllib.request.Request("http://127.0.0.1:%d/_control" % port,
                                                      data=json.dumps({"product_module": on}).encode())).read()

    product_module(True)
    for req in reqs:
        if "no-product-module" in req:
            product_module(False)
        raw = open(req, "rb").read()
        params, method = xmlrpc.client.loads(raw)
        path = "/xmlrpc/2/common" if method in ("version", "authenticate", "login") else "/xmlrpc/2/object"
        got = urllib.request.urlopen(urllib.request.Request("http://127.0.0.1:%d%s" % (port, path), data=raw,
                                                            headers={"Content-Type": "text/xml"})).read()
        want = answer(body_of(req.replace(".request.xml", ".response.http")))
        have = answer(got)
        name = os.path.basename(req).replace(".request.xml", "")
        ok(have == want, "%s answers as recorded" % name, "want %r\ngot  %r" % (want, have))

    urllib.request.urlopen(urllib.request.Request("http://127.0.0.1:%d/_control" % port,
                                                  data=b'{"reset": true, "version": 19}')).read()
    reqs = sorted(glob.glob(os.path.join(fx19, "*.request")))
    ok(len(reqs) >= 40, "%d recorded JSON-2 requests" % len(reqs))
    product_module(True)
    for req in reqs:
        if "no-product-module" in req:
            product_module(False)
        first, headers, body = http_message(req)
        method, path, _ = first.split(" ")
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
        conn.request(method, path, body=body or None, headers=headers)
        resp = conn.getresponse()
        have = json2_answer(resp.status, {k.lower(): v.strip() for k, v in resp.getheaders()}, resp.read(), path)
        conn.close()
        status_line, rheaders, rbody = http_message(req.replace(".request", ".response"))
        want = json2_answer(int(status_line.split(" ")[1]), rheaders, rbody, path)
        name = os.path.basename(req).replace(".request", "")
        if have != want and name in KNOWN19:
            ok(True, "19 %s # SKIP %s" % (name, KNOWN19[name]))
        else:
            ok(have == want, "19 %s answers as recorded" % name, "want %r\ngot  %r" % (want, have))
    # The server recorded had several databases, so a request without X-Odoo-Database got a 404; with one
    # database, as the double has, Odoo serves it (http.py: monodb).
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    conn.request("POST", "/json/2/res.users/context_get", body=b"{}",
                 headers={"Content-Type": "application/json", "Authorization": "Bearer admin"})
    resp = conn.getresponse()
    is_eq((resp.status, json.loads(resp.read())), (200, {"lang": "en_US", "tz": False, "uid": 2}),
          "19 without X-Odoo-Database: the only database answers")
    conn.close()
finally:
    double.terminate()
    double.wait()
done()
