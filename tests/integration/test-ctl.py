"""crmbridgectl classify and eval, with the Gemini double: Gemini is used
when GOOGLE_API_KEY is set, --offline forces the rules, and a Gemini that
fails (a bad key here) falls back to the rules with the reason shown."""

import json
import os
import subprocess
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

    r = subprocess.run([ctl, "classify", "/nonexistent.json"], capture_output=True, text=True)
    ok(r.returncode == 1 and "nonexistent" in r.stderr, "a missing file: exit 1 and a message")
finally:
    double.terminate()
    double.wait()
done()
