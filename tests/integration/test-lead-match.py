"""A lead the sales team typed by hand before the customer wrote on WhatsApp is found and updated, never duplicated
(issue #24: every other test's lead was made by crmbridge itself, already in E.164, so a search by `phone = E.164`
alone passed them all). The real daemon, a real redis-server, the Twilio double and the Odoo double on Odoo 17's
XML-RPC, then Odoo 19's JSON-2, with a salesperson ("Laura Ventas") typing the leads over XML-RPC with her own
login, in the forms people type numbers in:

- "+57 300 111 9002" in Phone (Odoo sanitizes it: phone_sanitized +573001119002);
- "300 111 9003" in Phone (national; the company has no country, as a fresh database's: no phone_sanitized);
- "+57 300-111-9004" in Mobile, Phone empty (Odoo 17; 19 has no mobile);
- a lead with another number and the e-mail the customer will type: not the customer's (an e-mail anyone can
  type proves nothing; docs/ODOO.md), so crmbridge makes its own lead and leaves that one alone."""

import os
import sys
import xmlrpc.client

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import Daemon, Redis, control, done, free_port, get, is_eq, ok, post_whatsapp, resp, skip_all, start_fake, wait_for, workdir, write_config  # noqa

if not os.path.exists(os.environ.get("REDIS_SERVER") or "/usr/bin/redis-server"):
    skip_all("redis-server not installed")

TOKEN = "12345"
SID = "AC" + "0" * 32
wd = workdir()
redis = Redis(wd)
redis.start()
port = free_port()
PUBLIC = "http://127.0.0.1:%d" % port
twilio, tport = start_fake("twilio.py", "--account-sid", SID, "--auth-token", TOKEN)
odoo, oport = start_fake("odoo.py", "--x-fields")
conf = os.path.join(wd, "crmbridge.conf")
seq = [0]
LINES = ["Hola, soy Ana Gómez", "Busco un sofá de 3 puestos", "Mi presupuesto es de $2000", "ana@example.com"]


def config(protocol):
    write_config(conf, f"""[server]
listen = 127.0.0.1:{port}
public_url = {PUBLIC}
[redis]
url = {redis.url}
[engine]
coalesce_window = 200ms
[twilio]
account_sid = {SID}
auth_token = {TOKEN}
whatsapp_from = whatsapp:+14155238886
api_base = http://127.0.0.1:{tport}
[odoo]
url = http://127.0.0.1:{oport}
db = crmfix
username = admin
password = admin
timeout = 10s
protocol = {protocol}
""")


def sent_to(phone):
    return [e for e in get(tport, "/_log") if e["form"].get("To") == "whatsapp:" + phone and e["answer"] == 201]


def converse(phone):
    for line in LINES:
        n = len(sent_to(phone))
        seq[0] += 1
        post_whatsapp(port, TOKEN, PUBLIC, phone, line, "SM%032x" % (0x1EAD000 + seq[0]))
        wait_for(lambda: len(sent_to(phone)) > n, 10)


def leads():
    return get(oport, "/_leads")


def creates_for(phone):
    """crm.lead creates that carried this number, in any protocol's log entry."""
    return [e for e in get(oport, "/_log") if e.get("method") == "create" and phone in str(e)
            and ("/crm.lead/" in e.get("path", "") or (e.get("params") or [None])[0] == "crm.lead")]


def scenario(version):
    tag = "Odoo %d (%s)" % (version, "XML-RPC" if version < 19 else "JSON-2")
    control(oport, {"reset": True, "x_fields": True, "version": version})
    control(tport, {"reset": True})
    resp(redis.port, "FLUSHALL")
    u = control(oport, {"user": {"login": "laura", "password": "laurapw", "name": "Laura Ventas"}})
    rpc = xmlrpc.client.ServerProxy("http://127.0.0.1:%d/xmlrpc/2/object" % oport, allow_none=True)

    def laura(method, args):
        return rpc.execute_kw("crmfix", u["uid"], "laurapw", "crm.lead", method, args, {})

    typed = [("+573001119002", {"name": "Sofá para Ana (llamó)", "phone": "+57 300 111 9002"}),
             ("+573001119003", {"name": "Pedido por teléfono", "phone": "300 111 9003"})]
    if version < 19:
        typed.append(("+573001119004", {"name": "Cliente de la feria", "mobile": "+57 300-111-9004"}))
    ids = {e164: laura("create", [vals]) for e164, vals in typed}
    other = laura("create", [{"name": "Otra Ana", "phone": "+57 310 555 0000", "email_from": "ana@example.com"}])
    n_leads = len(leads())
    config("xmlrpc" if version < 19 else "json2")
    d = Daemon(wd, conf)
    try:
        check(tag, d, typed, ids, other, n_leads)
    finally:
        d.kill()


def check(tag, d, typed, ids, other, n_leads):
    ok(d.wait_notify("READY=1", 15) is not None, "%s: daemon ready" % tag)
    for e164, vals in typed:
        how = "typed %r in %s" % (vals.get("phone") or vals.get("mobile"), "phone" if "phone" in vals else "mobile")
        converse(e164)
        st = lambda: d.get_json("/api/conversation/%s/status" % e164)[1]  # noqa: E731
        ok(wait_for(lambda: st().get("lead_id") is not None and st().get("lead_pending") is False, 20),
           "%s: %s: the conversation has its lead" % (tag, how), st())
        is_eq(st().get("lead_id"), ids[e164], "%s: %s: it is the lead the salesperson typed" % (tag, how))
        lead = next((ld for ld in leads() if ld["id"] == ids[e164]), {})
        ok("sofá" in (lead.get("x_product_interest") or ""), "%s: %s: that lead has what the customer wants" % (tag, how),
           lead.get("x_product_interest"))
        is_eq(lead.get("name"), vals["name"], "%s: %s: and keeps the name the salesperson gave it" % (tag, how))
        is_eq(creates_for(e164), [], "%s: %s: no crm.lead create for that number" % (tag, how))
    is_eq(len(leads()), n_leads, "%s: no lead added for the typed ones" % tag)
    # The e-mail alone is not the customer's lead.
    e164 = "+573001119005"
    converse(e164)
    ok(wait_for(lambda: d.get_json("/api/conversation/%s/status" % e164)[1].get("lead_id") is not None, 20),
       "%s: a customer with another lead's e-mail: a lead" % tag)
    mine = d.get_json("/api/conversation/%s/status" % e164)[1].get("lead_id")
    ok(mine is not None and mine != other, "%s: their own, not the one with the same e-mail" % tag, mine)
    o = next((ld for ld in leads() if ld["id"] == other), {})
    ok(not o.get("x_product_interest") and o.get("phone") == "+57 310 555 0000",
       "%s: the other lead left alone" % tag, o)


try:
    scenario(17)
    scenario(19)
finally:
    twilio.terminate()
    odoo.terminate()
    redis.stop()
done()
