"""crmbridgectl classify and eval, with the Gemini double: Gemini is used
when GOOGLE_API_KEY is set, --offline forces the rules, and a Gemini that
fails (a bad key here) falls back to the rules with the reason shown."""

import json
import os
import subprocess
import tempfile
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import done, is_eq, ok  # noqa: E402

top = os.environ.get("TOP_SRCDIR", ".")
ctl = os.path.join(os.environ.get("TOP_BUILDDIR", "."), "crmbridgectl")
case = os.path.join(top, "tests", "data", "conversations", "es-sofa-complete.json")
double = subprocess.Popen([sys.executable, os.path.join(top, "tests", "fakes", "gemini.py")], stdout=subprocess.PIPE,
                          text=True)
try:
    port = int(double.stdout.readline().split()[1])
    base = "http://127.0.0.1:%d" % port
    answer = {"quality": "hot", "confidence": 0.88, "intent": "sales", "reason": "purchase", "sentiment": 0.2,
              "fields": {"name": "María", "email": None, "phone": None, "city": None,
                         "product_interest": "sofá de 3 puestos", "budget_range": "$2000", "urgency": None,
                         "specific_need": None},
              "missing": ["email"], "action": "create_lead", "reply": "¡Gracias, María! Te escribimos pronto.",
              "language": "es", "reasoning": "Completo."}
    import urllib.request
    urllib.request.urlopen(base + "/_control", json.dumps({"reset": True, "answer": answer}).encode()).read()

    env = dict(os.environ, GOOGLE_API_KEY="test-gemini-key", GEMINI_API_BASE=base)
    r = subprocess.run([ctl, "classify", case], capture_output=True, text=True, env=env)
    out = json.loads(r.stdout)
    is_eq(r.returncode, 0, "classify with GOOGLE_API_KEY exits 0")
    for k in ("quality", "score", "confidence", "intent", "sentiment", "action", "fields", "missing", "reply", "language"):
        ok(k in out, "the JSON has %s" % k)
    is_eq(out["source"], "gemini", "Gemini classified it")
    is_eq(out["reply"], "¡Gracias, María! Te escribimos pronto.", "the model's checked reply")
    is_eq(out["confidence"], 0.88, "and its confidence")

    r = subprocess.run([ctl, "--version"], capture_output=True, text=True)
    ok(r.returncode == 0 and r.stdout.startswith("crmbridgectl 0."), "crmbridgectl --version", r.stdout + r.stderr)
    r = subprocess.run([ctl, "classify", "--offline", case], capture_output=True, text=True, env=env)
    is_eq(json.loads(r.stdout)["source"], "rules", "--offline uses the rules even with a key")

    bad = dict(env, GOOGLE_API_KEY="wrong")
    r = subprocess.run([ctl, "classify", case], capture_output=True, text=True, env=bad)
    out = json.loads(r.stdout)
    ok(r.returncode == 0 and out["source"] == "rules" and out["action"] == "create_lead",
       "a bad key: the rules answer, with a full analysis")
    ok("API key not valid" in r.stderr, "and the reason is shown", r.stderr)

    r = subprocess.run([ctl, "eval", "--json", os.path.join(top, "tests", "data", "conversations")], capture_output=True,
                       text=True, env=env)
    out = json.loads(r.stdout)
    ok(r.returncode == 0 and out["classifier"] == "gemini" and out["cases"] >= 60, "eval runs against Gemini")
    ok(all(c["source"] == "gemini" for c in out["results"]), "every case answered by the model")

    # ---- odoo-check and odoo-setup against the Odoo double ----
    odoo = subprocess.Popen([sys.executable, os.path.join(top, "tests", "fakes", "odoo.py")], stdout=subprocess.PIPE,
                            text=True)
    try:
        oport = int(odoo.stdout.readline().split()[1])
        oenv = dict(os.environ, ODOO_URL="http://127.0.0.1:%d" % oport, ODOO_DB="crmfix", ODOO_USERNAME="admin",
                    ODOO_PASSWORD="admin", CRMBRIDGE_CONFIG="/dev/null/none")
        oenv.pop("CRMBRIDGE_CONFIG")
        r = subprocess.run([ctl, "-c", "/nonexistent/crmbridge.conf", "odoo-check"], capture_output=True, text=True,
                           env=oenv)
        ok(r.returncode == 1 and "cannot open" in r.stderr, "odoo-check with a missing -c file: exit 1")
        r = subprocess.run([ctl, "odoo-check"], capture_output=True, text=True, env=oenv)
        ok(r.returncode == 0 and "x_ fields are missing" in r.stdout and "create rights  ok" in r.stdout,
           "odoo-check: login, rights, and the missing x_ fields", r.stdout + r.stderr)
        r = subprocess.run([ctl, "odoo-setup"], capture_output=True, text=True, env=oenv)
        ok(r.returncode == 0 and "5 field(s) created, 0 already present" in r.stdout, "odoo-setup creates five fields",
           r.stdout + r.stderr)
        ok("created  crm.lead.x_quality_score" in r.stdout, "and says which")
        r = subprocess.run([ctl, "odoo-setup"], capture_output=True, text=True, env=oenv)
        ok(r.returncode == 0 and "0 field(s) created, 5 already present" in r.stdout, "a second run changes nothing")
        r = subprocess.run([ctl, "odoo-check"], capture_output=True, text=True, env=oenv)
        ok(r.returncode == 0 and "x_quality_score" in r.stdout and "OK: crmbridge can write leads" in r.stdout,
           "odoo-check now lists the fields", r.stdout)
        ok("inbox          ok" in r.stdout and "a Log note \"/bot\" hands back" in r.stdout,
           "odoo-check: the query that reads the salespeople's messages works", r.stdout)
        ok("is notified by e-mail" in r.stdout and "Handle in Odoo" in r.stdout,
           "odoo-check: a user notified by e-mail is told what that means for the inbox", r.stdout)
        control_req = __import__("urllib.request").request
        control_req.urlopen("http://127.0.0.1:%d/_control" % oport,
                            json.dumps({"fault_next": {"method": "search_read", "model": "mail.message", "code": 4,
                                                       "message": "You are not allowed to access 'Message'"}})
                            .encode(), timeout=10).read()
        r = subprocess.run([ctl, "odoo-check"], capture_output=True, text=True, env=oenv)
        ok(r.returncode == 1 and "inbox          FAILED" in r.stdout and "not allowed" in r.stdout,
           "odoo-check: the inbox's query refused: exit 1 and why", r.stdout)
        # On a production host the API key is the service's encrypted credential (docs/DEPLOY.md): an admin's
        # odoo-check decrypts it with systemd-creds, as root.
        store = tempfile.mkdtemp(prefix="crmb-credstore-") + "/credstore.encrypted"
        os.makedirs(store, mode=0o700)
        enc = subprocess.run(["systemd-creds", "encrypt", "--name=odoo_password", "-", store + "/odoo_password"],
                             input="admin", capture_output=True, text=True)
        if enc.returncode == 0:
            cenv = dict(oenv, CRMBRIDGE_CREDSTORE=store)
            cenv.pop("ODOO_PASSWORD")
            r = subprocess.run([ctl, "odoo-check"], capture_output=True, text=True, env=cenv)
            ok(r.returncode == 0 and "OK: crmbridge can write leads" in r.stdout,
               "odoo-check with the password only as an encrypted credential: decrypted and used", r.stdout + r.stderr)
            r = subprocess.run([ctl, "odoo-check"], capture_output=True, text=True,
                               env=dict(cenv, CRMBRIDGE_CREDSTORE=store + "-none"))
            ok(r.returncode == 1 and "credential odoo_password" in r.stderr, "no such credential: the error names it",
               r.stderr)
        else:
            ok(False, "systemd-creds encrypt works here (as root)", enc.stderr)
        r = subprocess.run([ctl, "odoo-check"], capture_output=True, text=True, env=dict(oenv, ODOO_PASSWORD="nope"))
        ok(r.returncode == 1 and "login refused" in r.stdout, "a wrong password: exit 1 and why", r.stdout)
        ok("nope" not in r.stdout + r.stderr, "without showing the password")
        r = subprocess.run([ctl, "odoo-check"], capture_output=True, text=True,
                           env={k: v for k, v in oenv.items() if not k.startswith("ODOO_")})
        ok(r.returncode == 1 and "not configured" in r.stderr, "no Odoo configured: exit 1 and why")
    finally:
        odoo.terminate()
        odoo.wait()

    r = subprocess.run([ctl, "classify", "/nonexistent.json"], capture_output=True, text=True)
    ok(r.returncode == 1 and "nonexistent" in r.stderr, "a missing file: exit 1 and a message")
finally:
    double.terminate()
    double.wait()
done()
