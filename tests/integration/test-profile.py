"""The business profile end to end (#20): [business] and the JSON file it names reach the rules (a catalogue
synonym is a product), the replies (a question answered from the facts, before the lead and after it), the
model's instruction (what the Gemini double received), GET /api/profile and crmbridgectl profile; a broken
profile stops the start with the key and the file named, and a reload with one keeps the running profile."""

import json
import os
import signal
import subprocess
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import Daemon, Redis, control, done, get, is_eq, ok, post_whatsapp, skip_all, start_fake, twilio_replies, wait_for, workdir, write_config  # noqa

if not os.path.exists(os.environ.get("REDIS_SERVER") or "/usr/bin/redis-server"):
    skip_all("redis-server not installed")

CTL = os.path.join(os.environ.get("TOP_BUILDDIR", "."), "crmbridgectl")
TOKEN = "12345"
SID = "AC" + "0" * 32
PUBLIC = "https://bot.example.com"
ADMIN = "admin-token-profile-test-0123456789"
wd = workdir()
redis = Redis(wd)
redis.start()
twilio, tport = start_fake("twilio.py", "--account-sid", SID, "--auth-token", TOKEN)
gemini, gport = start_fake("gemini.py")

profile = os.path.join(wd, "business.json")
with open(profile, "w") as f:
    json.dump({
        "description": "Clínica dental en Lima: ortodoncia, implantes y blanqueamiento",
        "country": "PE", "currency": "PEN",
        "cities": ["Lima", "Surquillo"],
        "catalogue": [{"name": "Ortodoncia", "synonyms": ["frenillos", "brackets"], "category": "Tratamientos"},
                      "Blanqueamiento dental"],
        "facts": [
            {"topic": "hours", "text": {"es": "Atendemos de lunes a sábado de 9 a 19 h.",
                                       "en": "We are open Monday to Saturday, 9am to 7pm."}},
            {"topic": "parking", "keywords": ["estacionamiento", "parking"],
             "text": {"es": "Tenemos estacionamiento gratuito para pacientes."}},
        ]}, f, ensure_ascii=False)


def config(extra="", business=True):
    path = os.path.join(wd, "crmbridge.conf")
    write_config(path, f"""[server]
listen = 127.0.0.1:0
public_url = {PUBLIC}
admin_token = {ADMIN}
state_dir = {os.path.join(wd, "state")}
[redis]
url = {redis.url}
[engine]
coalesce_window = 200ms
[twilio]
account_sid = {SID}
auth_token = {TOKEN}
whatsapp_from = whatsapp:+14155238886
api_base = http://127.0.0.1:{tport}
status_callback = no
""" + (f"""[business]
profile = {profile}
name = Sonrisa Dental
languages = es, en
hot_needs = budget
""" if business else "") + extra)
    return path


seq = [0]


def post(d, phone, body):
    seq[0] += 1
    return post_whatsapp(d.port, TOKEN, PUBLIC, phone, body, "SM%032x" % (0xB0000 + seq[0]))


def replies(phone):
    return twilio_replies(tport, phone)


def converse(d, phone, lines):
    for i, line in enumerate(lines):
        post(d, phone, line)
        wait_for(lambda: len(replies(phone)) >= i + 1, 15)
    return replies(phone)


def ctl(d, *args):
    return subprocess.run([CTL, "--url", "http://127.0.0.1:%d" % d.port, "--token", ADMIN] + list(args),
                          capture_output=True, text=True, timeout=30)


d = Daemon(wd, config())
try:
    ok(d.wait_notify("READY=1", 10) is not None, "a daemon with a business profile starts")
    st, j = d.get_json("/api/profile", headers={"Authorization": "Bearer " + ADMIN})
    ok(st == 200 and j["configured"] and j["name"] == "Sonrisa Dental" and j["currency"] == "PEN"
       and len(j["catalogue"]) == 2 and j["hot_needs"] == "budget" and j["file"] == profile,
       "GET /api/profile: the file and [business] merged ([business] wins)", j)
    st, _ = d.get_json("/api/profile")
    is_eq(st, 401, "and only with the admin token")
    r = ctl(d, "profile")
    ok(r.returncode == 0 and "Sonrisa Dental" in r.stdout and "Ortodoncia [Tratamientos] (frenillos, brackets)"
       in r.stdout and "hours [es]: Atendemos" in r.stdout and "+ budget" in r.stdout,
       "crmbridgectl profile shows it", r.stdout + r.stderr)
    r = ctl(d, "--json", "profile")
    ok(r.returncode == 0 and json.loads(r.stdout)["catalogue"][0]["synonyms"] == ["frenillos", "brackets"],
       "and as JSON")

    phone = "+51987000001"
    r = converse(d, phone, ["Hola, soy Ana y me interesan los frenillos. ¿A qué hora atienden?"])
    ok(r[0].startswith("Atendemos de lunes a sábado de 9 a 19 h.") and len(r[0]) > 45,
       "a question answered from the facts, then the next question", r)
    post(d, phone, "Tengo unos 3000 soles")
    ok(wait_for(lambda: len(replies(phone)) >= 2, 15) and "frenillos" in replies(phone)[1],
       "a catalogue synonym is the product: hot with a budget (hot_needs = budget), the lead confirmed",
       replies(phone))
    post(d, phone, "¿Tienen estacionamiento?")
    ok(wait_for(lambda: len(replies(phone)) >= 3, 15) and replies(phone)[2] ==
       "Tenemos estacionamiento gratuito para pacientes.", "after the lead, a fact answers the question itself",
       replies(phone))
    post(d, phone, "¿Hacen descuento a estudiantes?")
    ok(wait_for(lambda: len(replies(phone)) >= 4, 15) and "Tenemos" not in replies(phone)[3]
       and replies(phone)[3] != replies(phone)[2], "a question with no fact: the advisor will answer, nothing "
       "invented", replies(phone))

    # A reload with a broken profile keeps the running one.
    with open(profile) as f:
        good = f.read()
    with open(profile, "w") as f:
        f.write("{\"facts\": [{\"topic\": \"hours\"}]}")
    d.clear()
    d.signal(signal.SIGHUP)
    ok(wait_for(lambda: "keeping the running configuration" in d.logtext(), 10)
       and "business.json" in d.logtext(), "a reload with a broken profile: refused, the file named")
    st, j = d.get_json("/api/profile", headers={"Authorization": "Bearer " + ADMIN})
    ok(st == 200 and len(j["facts"]) == 2, "and the running profile stays")
    with open(profile, "w") as f:
        f.write(good)
finally:
    d.signal(signal.SIGTERM)
    d.wait(10)

# The model's instruction carries the profile.
control(gport, {"reset": True, "toy": True})
d = Daemon(wd, config("[gemini]\napi_base = http://127.0.0.1:%d\n" % gport),
           env={"GOOGLE_API_KEY": "test-gemini-key"})
try:
    ok(d.wait_notify("READY=1", 10) is not None, "with a model")
    phone = "+51987000002"
    converse(d, phone, ["Hola, busco brackets"])
    reqs = [e for e in get(gport, "/_log") if "generateContent" in e.get("path", "")]
    sysi = reqs[-1]["body"]["systemInstruction"]["parts"][0]["text"] if reqs else ""
    ok("Sonrisa Dental" in sysi and "Ortodoncia (Tratamientos)" in sysi and "Atendemos de lunes" in sysi
       and "+ budget" in sysi and "Currency: PEN" in sysi, "the model's instruction includes the profile", sysi[-600:])
finally:
    d.signal(signal.SIGTERM)
    d.wait(10)

# The catalogue from Odoo: the products that can be sold (not the archived one, not one that cannot be sold) join
# the profile's; without the product module the log says what to do and the profile's own catalogue stays.
odoo, oport = start_fake("odoo.py")
control(oport, {"product_module": True, "products": [
    {"name": "Plan Familia Premium", "category": "Planes"}, {"name": "Clase de spinning", "category": "Clases"},
    {"name": "Toalla de repuesto", "category": "Clases", "sale_ok": False},
    {"name": "Plan Antiguo", "category": "Planes", "active": False}, {"name": "Bono regalo"}]})
odoo_conf = """[odoo]
url = http://127.0.0.1:%d
db = crmfix
username = admin
password = admin
""" % oport
d = Daemon(wd, config(odoo_conf + "[business]\ncatalogue_from_odoo = yes\n", business=False))
try:
    ok(d.wait_notify("READY=1", 10) is not None, "with the catalogue from Odoo")
    auth = {"Authorization": "Bearer " + ADMIN}
    ok(wait_for(lambda: d.get_json("/api/profile", headers=auth)[1].get("odoo_catalogue", {}).get("items") == 3, 10),
       "the products that can be sold are read", d.get_json("/api/profile", headers=auth)[1])
    j = d.get_json("/api/profile", headers=auth)[1]
    is_eq(sorted((i["name"], i.get("category"), i["source"]) for i in j["catalogue"]),
          [("Bono regalo", None, "odoo"), ("Clase de spinning", "Clases", "odoo"),
           ("Plan Familia Premium", "Planes", "odoo")],
          "not the archived one, not the one that cannot be sold; with their categories (not Odoo's stock 'All')")
    calls = [e for e in get(oport, "/_log") if "product.template" in json.dumps(e)]
    ok(len(calls) >= 1, "one search_read on product.template", calls[-1:])
    r = ctl(d, "profile")
    ok("from Odoo    3 products" in r.stdout and "Plan Familia Premium [Planes]" in r.stdout, "crmbridgectl profile "
       "says so", r.stdout)
    phone = "+51987000003"
    converse(d, phone, ["Hola, soy Ana. Vi el plan familia premium en su página, somos 4"])
    st, conv = d.get_json("/api/conversation/%%2B%s/status" % phone[1:], headers=auth)
    ok(st == 200 and "familia premium" in json.dumps(conv, ensure_ascii=False).lower(),
       "a product of Odoo's catalogue named without a buying verb is read as the product", conv)
    d.clear()
    d.signal(signal.SIGHUP)
    ok(wait_for(lambda: "configuration reloaded" in d.logtext(), 10), "a reload")
    j = d.get_json("/api/profile", headers=auth)[1]
    ok(len([i for i in j["catalogue"] if i["source"] == "odoo"]) == 3 and not j["odoo_catalogue"].get("error"),
       "keeps the products read from Odoo (until the next read), and no error for the call it ended", j)
finally:
    d.signal(signal.SIGTERM)
    d.wait(10)
control(oport, {"reset": True})
d = Daemon(wd, config(odoo_conf + "[business]\ncatalogue_from_odoo = yes\n", business=False))
try:
    ok(d.wait_notify("READY=1", 10) is not None, "an Odoo without the product module")
    ok(wait_for(lambda: "business.catalogue_from_odoo" in d.logtext() and "product module" in d.logtext(), 10),
       "the log says the products could not be listed and what to do", d.logtext()[-600:])
    j = d.get_json("/api/profile", headers={"Authorization": "Bearer " + ADMIN})[1]
    ok("doesn't exist" in (j["odoo_catalogue"].get("error") or "") and j["odoo_catalogue"]["items"] == 0,
       "and GET /api/profile shows the error", j["odoo_catalogue"])
finally:
    d.signal(signal.SIGTERM)
    d.wait(10)
odoo.kill()

# A profile that cannot be read stops the start, naming the key and the file.
bad = config()
with open(bad) as f:
    text = f.read().replace(profile, os.path.join(wd, "missing.json"))
write_config(bad, text)
d = Daemon(wd, bad)
rc = d.wait(10)
ok(rc not in (None, 0) and "business.profile" in d.logtext() and "missing.json" in d.logtext(),
   "a missing profile file: the daemon does not start, and says which key and file", d.logtext()[-400:])

twilio.kill()
gemini.kill()
redis.stop()
done()
