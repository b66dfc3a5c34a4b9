#!/usr/bin/env python3
"""An Odoo double for crmbridge's tests: XML-RPC (/xmlrpc/2/common, /xmlrpc/2/object) and JSON-2
(/json/2/<model>/<method>), answering like the recorded Odoo 17 exchanges in tests/data/odoo17.

Odoo marshals XML-RPC with Python's xmlrpc.client, as this double does, so answers have the same bytes'
shape; faults carry the same codes and the same last line (code 1 strings are tracebacks).
In memory: crm.lead (phone_sanitized computed, archived leads hidden from default searches), ir.model,
ir.model.fields (x_ fields appear on crm.lead once created), utm.source, utm.medium, crm.tag,
mail.message (message_post escapes a plain body, keeps it with body_is_html), res.users (a user
without CRM rights gets fault 4).

As a fresh Odoo 17/19 database is (checked against real servers, see docs/ODOO.md): the "Leads" setting off
(crm.lead's default type is then 'opportunity', res.users.has_group('crm.group_use_lead') False), the company
without a country (a number typed without "+" gets phone_sanitized False), the creating user as salesperson and
its team, the first stage; tracked fields (contact_name, email_from, phone, partner_name, user_id, team_id,
stage_id, type, active) leave a tracking message authored by the writer unless the context says
tracking_disable or mail_notrack; deleting a message deletes its tracking values; on 19 crm.lead has no
`mobile` and GET /json/version answers.

Knobs, POST /_control JSON: {"reset": true, "x_fields": true|false, "version": 17|19, "latency_ms": N,
"down": true|false (503 for everything), "fail_next": N (the next N calls answer HTTP 500),
"fault_next": {"method": "write", "code": 2, "message": "...", "model": "crm.lead" (optional: any model), "times": N
(optional: the next N such calls, 1 by default)},
"fault_every": N (every Nth crm.lead create/write answers fault 1, a serialization failure),
"leads_setting": true|false (the CRM "Leads" setting), "company_country": "57" | null (the company's country
calling code: national numbers are then sanitized with it),
"create_delay_ms": N (a crm.lead create is committed at once and answered N ms later: a slow Odoo),
"lock_ms": N (from now, every crm.lead create/write/unlink/message_post waits N ms before it runs, as behind a
long transaction's row locks; reads go on; the writes run when it ends, even if their client has given up),
"lock_reads": true (with lock_ms: every crm.lead call waits, reads too, as behind LOCK TABLE crm_lead IN ACCESS
EXCLUSIVE MODE; other tables answer),
"product_module": true|false (Odoo's product module, off by default: product.template and product.category exist;
a fresh database's categories as recorded), "products": [{"name", "category", "sale_ok", "active"}] (made now) }.
"user": {"login", "password", "name", "notification_type": "email"|"inbox"} (another internal user with Sales "All
Documents", e.g. a salesperson posting on a lead's chatter over XML-RPC with her own login; answers its uid),
"bounce_next": N (the next N mail.mail sent bounce; unused by crmbridge).
The chatter (#22), as recorded on real 17.0 and 19.0 (tests/data/odoo-chatter): a lead's creator follows it unless
the context says mail_create_nosubscribe; 17 makes every message_post's author a follower, 19 only at a "Send message"
(mt_comment), unless the context says mail_create_nosubscribe; a "Send message" e-mails every follower but its
author (a mail.mail row per recipient, GET /_mails), a note only its partner_ids, as each chose (notification_type:
inbox gives a notification, no mail); a mail.message created directly notifies nobody; message_id, email_from,
author_id (False for an address no partner has), attachment_ids and date are stored as given or defaulted.
GET /_log lists the calls; GET /_leads dumps crm.lead, /_messages mail.message, /_tracking mail.tracking.value,
/_mails the e-mails Odoo would send, /_notifications the inbox notifications, /_followers each lead's followers.
Prints "PORT <n>".
"""

import argparse
import datetime
import html
import json
import re
import threading
import time
import xmlrpc.client
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import odoo_json2

LOCK = threading.Lock()
ARGS = None


class OdooError(Exception):
    def __init__(self, code, message, traceback=False, http=500, name="odoo.exceptions.UserError"):
        super().__init__(message)
        self.code, self.message, self.traceback, self.http, self.name = code, message, traceback, http, name

    def fault_string(self):
        if not self.traceback:
            return self.message
        return ("Traceback (most recent call last):\n"
                "  File \"/usr/lib/python3/dist-packages/odoo/addons/base/controllers/rpc.py\", line 147, in xmlrpc_2\n"
                "    response = self._xmlrpc(service)\n"
                "               ^^^^^^^^^^^^^^^^^^^^^\n"
                "  File \"/usr/lib/python3/dist-packages/odoo/service/model.py\", line 62, in execute_kw\n"
                "    return execute(db, uid, obj, method, *args, **kw or {})\n"
                + self.message + "\n")


TRACKED = ("contact_name", "email_from", "phone", "partner_name", "user_id", "team_id", "stage_id", "type", "active")
LEAD_FIELDS = {
    "name": {"type": "char", "string": "Opportunity", "required": True},
    "type": {"type": "selection", "string": "Type", "required": True,
             "selection": [["lead", "Lead"], ["opportunity", "Opportunity"]]},
    "priority": {"type": "selection", "string": "Priority", "required": False,
                 "selection": [["0", "Low"], ["1", "Medium"], ["2", "High"], ["3", "Very High"]]},
    "description": {"type": "html", "string": "Notes", "required": False},
    "contact_name": {"type": "char", "string": "Contact Name", "required": False},
    "email_from": {"type": "char", "string": "Email", "required": False},
    "phone": {"type": "char", "string": "Phone", "required": False},
    "mobile": {"type": "char", "string": "Mobile", "required": False},
    "phone_sanitized": {"type": "char", "string": "Sanitized Number", "required": False},
    "city": {"type": "char", "string": "City", "required": False},
    "partner_name": {"type": "char", "string": "Company Name", "required": False},
    "active": {"type": "boolean", "string": "Active", "required": False},
    "probability": {"type": "float", "string": "Probability", "required": False},
    "stage_id": {"type": "many2one", "string": "Stage", "required": False},
    "team_id": {"type": "many2one", "string": "Sales Team", "required": False},
    "user_id": {"type": "many2one", "string": "Salesperson", "required": False},
    "source_id": {"type": "many2one", "string": "Source", "required": False},
    "medium_id": {"type": "many2one", "string": "Medium", "required": False},
    "tag_ids": {"type": "many2many", "string": "Tags", "required": False},
    "create_date": {"type": "datetime", "string": "Created on", "required": False},
    "write_date": {"type": "datetime", "string": "Last Updated on", "required": False},
}
X_FIELDS = {
    "x_source": {"type": "char", "string": "Lead source (crmbridge)", "required": False},
    "x_product_interest": {"type": "char", "string": "Product interest", "required": False},
    "x_budget_range": {"type": "char", "string": "Budget range", "required": False},
    "x_ai_confidence": {"type": "float", "string": "AI confidence", "required": False},
    "x_quality_score": {"type": "selection", "string": "Quality score", "required": False,
                        "selection": [["hot", "Hot"], ["warm", "Warm"], ["cold", "Cold"]]},
}
MODEL_NAMES = {"crm.lead": "Lead/Opportunity", "phone.blacklist": "Phone Blacklist", "utm.source": "Source", "utm.medium": "Medium", "crm.tag": "Tag", "crm.team": "Sales Team",
               "mail.message": "Message", "ir.model": "Models", "res.company": "Companies", "ir.model.fields": "Fields", "res.users": "User",
               "ir.model.data": "Model Data", "helpdesk.ticket": None, "mail.tracking.value": "Mail Tracking Value",
               "ir.attachment": "Attachment"}
HELPDESK = {"on": False}
# The product module (Odoo's Sales or Inventory app): without it neither model exists (recorded: 17 fault 2
# "Object product.template doesn't exist", 19 a 404).
PRODUCT_MODELS = {"product.template": "Product", "product.category": "Product Category"}


def now():
    return datetime.datetime.utcnow().strftime("%Y-%m-%d %H:%M:%S")


def sanitize(phone):
    """phone_validation's phone_sanitized: E.164 with the company's country; without one, only a number that
    starts with + (or 00) is understood, as phonenumbers does without a region."""
    if not phone:
        return False
    digits = re.sub(r"[^\d+]", "", phone)
    if digits.startswith("00"):
        digits = "+" + digits[2:]
    if not digits.startswith("+"):
        cc = S.company_cc if S is not None else None
        if not cc:
            return False
        digits = "+" + cc + digits.lstrip("0")
    return digits if len(digits) >= 8 else False


class State:
    def __init__(self, x_fields=False, version=17):
        self.version = version
        self.fields = dict(LEAD_FIELDS)
        if x_fields:
            self.fields.update(X_FIELDS)
        if version >= 19:
            self.fields.pop("mobile")  # gone from crm.lead in Odoo 19
        self.records = {m: {} for m in ["crm.lead", "utm.source", "utm.medium", "crm.tag", "mail.message",
                                        "ir.model.fields", "res.users", "helpdesk.ticket", "phone.blacklist",
                                        "mail.tracking.value", "crm.team", "ir.attachment"]}
        self.records["crm.team"][1] = {"id": 1, "name": "Sales", "sequence": 10}  # what crm installs
        # Sequences start where the recorded session's did, so replayed ids match the recordings.
        self.seq = {"crm.lead": 0, "utm.source": 9, "utm.medium": 9, "crm.tag": 0, "mail.message": 7,
                    "ir.model.fields": 3724, "res.users": 5, "helpdesk.ticket": 0, "phone.blacklist": 0,
                    "mail.tracking.value": 0, "ir.attachment": 0}
        self.users = {2: {"login": "admin", "name": "Administrator", "password": ARGS.password, "crm": True,
                          "notification_type": "email"}}
        self.followers = {}  # lead id -> set of partner ids
        self.mails = []  # the e-mails Odoo would send: {"message", "to" (partner id)}
        self.notifications = []  # inbox notifications: {"message", "to"}
        self.log = []
        self.latency_ms = 0
        self.down = False
        self.fail_next = 0
        self.fault_next = None
        self.fault_every = 0
        self.lead_writes = 0
        self.leads_setting = False
        self.company_cc = None
        self.create_delay_ms = 0
        self.lock_until = 0.0
        self.lock_reads = False
        self.product_module = False
        # The categories a fresh database has (recorded): 17 All, All / Saleable, All / Expenses (a template's
        # category defaults to All); 19 Goods, Expenses, Services, all top level (no default).
        cats = ([(1, "All", False), (2, "Saleable", 1), (3, "Expenses", 1)] if version < 19
                else [(1, "Goods", False), (2, "Expenses", False), (3, "Services", False)])
        self.records["product.category"] = {i: {"id": i, "name": n, "parent_id": p} for i, n, p in cats}
        self.records["product.template"] = {}
        self.seq["product.category"] = 3
        self.seq["product.template"] = 0

    def next_id(self, model, step=1):
        self.seq[model] += step
        return self.seq[model]


S = None


def check_fields(model, vals):
    if model != "crm.lead":
        return
    for k, v in vals.items():
        if k not in S.fields:
            where = "in 'crm.lead'" if S.version >= 19 else "on model 'crm.lead'"
            raise OdooError(1, "ValueError: Invalid field %r %s" % (k, where), traceback=True, http=422,
                            name="builtins.ValueError")
        f = S.fields[k]
        if f["type"] == "selection" and v is not False and v not in [s[0] for s in f["selection"]]:
            raise OdooError(1, "ValueError: Wrong value for crm.lead.%s: %r" % (k, v), traceback=True, http=422,
                            name="builtins.ValueError")


def match(rec, term):
    field, op, value = term
    if field == "source_id.name":  # a related path: the UTM source's name
        sid = rec.get("source_id")
        v = S.records["utm.source"].get(sid[0] if isinstance(sid, list) else sid, {}).get("name", False)
    else:
        v = rec.get(field, False)
    if isinstance(v, list) and len(v) == 2 and isinstance(v[0], int):
        v = v[0]
    if op == "=":
        return v == value or (value is False and v in (None, "", False))
    if op == "!=":
        return v != value
    if op == "in":
        return v in value
    if op == "not in":
        return v not in value
    if op in ("ilike", "like", "=ilike", "=like"):
        # SQL (I)LIKE, as Odoo sends it: % and _ are wildcards, backslash escapes; ilike/like wrap in %...%.
        pat = str(value)
        if op in ("ilike", "like"):
            pat = "%" + pat + "%"
        return isinstance(v, str) and like(v, pat, op.endswith("ilike"))
    if op in (">", "<", ">=", "<="):
        return v is not False and eval("v %s value" % op, {"v": v, "value": value})
    raise OdooError(1, "ValueError: Invalid leaf %r" % (term,), traceback=True)


def like(text, pattern, nocase):
    rx, i = "", 0
    while i < len(pattern):
        c = pattern[i]
        if c == "\\" and i + 1 < len(pattern):
            rx += re.escape(pattern[i + 1])
            i += 2
            continue
        rx += ".*" if c == "%" else "." if c == "_" else re.escape(c)
        i += 1
    return re.fullmatch(rx, text, re.S | (re.I if nocase else 0)) is not None


def evaluate(rec, domain):
    stack = []
    for term in reversed(domain):
        if term == "|":
            a, b = stack.pop(), stack.pop()
            stack.append(a or b)
        elif term == "&":
            a, b = stack.pop(), stack.pop()
            stack.append(a and b)
        elif term == "!":
            stack.append(not stack.pop())
        else:
            stack.append(match(rec, term))
    return all(stack)


def user_name(uid):
    u = S.users.get(uid, {})
    return u.get("name") or u.get("login", "?")


STAGES = [[1, "New"], [2, "Qualified"], [3, "Proposition"], [4, "Won"]]  # what crm installs


def m2o_key(v):
    return tuple(v) if isinstance(v, list) else v


def search(model, domain, order=None, limit=None, offset=0):
    recs = list(S.records[model].values())
    if model == "crm.lead" and not any(isinstance(t, (list, tuple)) and t[0] == "active" for t in domain):
        recs = [r for r in recs if r.get("active", True)]  # archived leads are hidden by default
    recs = [r for r in recs if evaluate(r, domain)]
    if model == "crm.lead" and not order:  # crm.lead's _order
        recs.sort(key=lambda r: (-int(r.get("priority") or 0), -r["id"]))
    else:
        recs.sort(key=lambda r: r["id"], reverse=bool(order and "desc" in order))
    recs = recs[offset:]
    return recs[:limit] if limit else recs


def project(rec, fields):
    if not fields:
        fields = [f for f in rec]
    out = {"id": rec["id"]}
    for f in fields:
        if f == "id":
            continue
        if f not in rec and f not in S.fields and rec.get("_model") == "crm.lead":
            raise OdooError(1, "ValueError: Invalid field %r on model 'crm.lead'" % f, traceback=True)
        out[f] = rec.get(f, False)
    return out


def partner_of(uid):
    return [uid + 1000, user_name(uid)]


def post_message(uid, res_id, body, message_type="notification", subtype=(2, "Note"), model="crm.lead", extra=None):
    mid = S.next_id("mail.message")
    S.records["mail.message"][mid] = {"id": mid, "model": model, "res_id": res_id, "body": body,
                                      "message_type": message_type, "subtype_id": list(subtype) if subtype else False,
                                      "create_uid": [uid, user_name(uid)],
                                      "author_id": partner_of(uid),
                                      "email_from": '"%s" <%s@example.com>' % (user_name(uid), S.users.get(uid, {}).get("login", "user")),
                                      "message_id": "<%d.%d-openerp-crm.lead-%s@odoo>" % (mid, int(time.time()), res_id),
                                      "attachment_ids": [], "partner_ids": [],
                                      "date": datetime.datetime.utcnow().strftime("%Y-%m-%d %H:%M:%S"),
                                      "tracking_value_ids": []}
    m = S.records["mail.message"][mid]
    for k, v in (extra or {}).items():
        if k == "author_id":
            # An author no partner is: False (the chatter shows email_from); a partner id: that partner.
            m["author_id"] = False if v is False else [v, next((u.get("name") for i, u in S.users.items()
                                                               if i + 1000 == v), "Partner %d" % v)]
            if v is False and "email_from" not in extra:
                m["email_from"] = False
        elif k in ("email_from", "message_id", "attachment_ids", "partner_ids", "date"):
            m[k] = v
    if S.version < 19 and model == "crm.lead":
        # Up to 18 a message stores its document's name as it was when posted (record_name); 19 computes it.
        S.records["mail.message"][mid]["record_name"] = S.records["crm.lead"].get(res_id, {}).get("name", False)
    return mid


def track(uid, rec, old, kw):
    """mail.thread's tracking: one message by the writer holding old and new values of the tracked fields."""
    ctx = (kw or {}).get("context") or {}
    if ctx.get("tracking_disable") or ctx.get("mail_notrack"):
        return
    changed = [f for f in TRACKED if f in S.fields and old.get(f, False) != rec.get(f, False)]
    if not changed:
        return
    mid = post_message(uid, rec["id"], "", subtype=(3, "Stage Changed") if "stage_id" in changed else None)
    for f in changed:
        tid = S.next_id("mail.tracking.value")
        S.records["mail.tracking.value"][tid] = {"id": tid, "mail_message_id": mid, "field": f,
                                                "old_value_char": old.get(f, False), "new_value_char": rec.get(f)}
        S.records["mail.message"][mid]["tracking_value_ids"].append(tid)


def assigned(uid, rec, old, kw):
    """A salesperson given the lead by another user gets Odoo's "You have been assigned" message (as real 17 and 19
    do, recorded in /srv/rec26): message_type user_notification, authored by the writer, the lead's name in its
    body. Nobody but the superuser may delete it (check_access_rule: no document rights for user_notification);
    its author may rewrite it."""
    ctx = (kw or {}).get("context") or {}
    new, before = rec.get("user_id"), old.get("user_id")
    new = new[0] if isinstance(new, list) else new
    before = before[0] if isinstance(before, list) else before
    if not new or new == before or new == uid or ctx.get("mail_auto_subscribe_no_notify") or ctx.get("tracking_disable"):
        return
    mid = post_message(uid, rec["id"], "<span><span>Dear %s,</span><br><br><span>You have been assigned to the Lead "
                                       "%s.</span><br></span>" % (user_name(new), rec.get("name")), "user_notification",
                       subtype=None, extra={"partner_ids": [new + 1000]})
    return mid


def notify(mid, partners, uid):
    """Odoo's notification: each partner (not the author) gets an e-mail or, with notification_type inbox, an inbox
    notification; partners that are no user's get e-mails."""
    for p in partners:
        if p == uid + 1000:
            continue
        u = S.users.get(p - 1000)
        if u is not None and u.get("notification_type") == "inbox":
            S.notifications.append({"message": mid, "to": p})
        else:
            S.mails.append({"message": mid, "to": p})


def lead_create(vals, uid=2, ctx=None):
    check_fields("crm.lead", vals)
    if not vals.get("name"):
        S.next_id("crm.lead")  # the insert fails after taking a sequence value, as in PostgreSQL
        raise OdooError(2, "The operation cannot be completed:\n- Create/update: a mandatory field is not set.\n"
                           "- Delete: another model requires the record being deleted. If possible, archive it "
                           "instead.\n\nModel: Lead/Opportunity (crm.lead)\nField: Opportunity (name)\n",
                        http=422, name="odoo.exceptions.ValidationError")
    rid = S.next_id("crm.lead")
    # Odoo's defaults: the type the Leads setting gives, the creating user as salesperson and its team, and
    # the team's first stage.
    rec = {"id": rid, "_model": "crm.lead", "active": True, "probability": 0.0,
           "type": "lead" if S.leads_setting else "opportunity", "priority": "0", "create_date": now(),
           "write_date": now(), "tag_ids": [], "user_id": [uid, user_name(uid)]}
    for k in S.fields:
        rec.setdefault(k, False)
    rec.update(vals)
    if type(rec.get("user_id")) is int:
        rec["user_id"] = [rec["user_id"], "User %d" % rec["user_id"]]
    if type(rec.get("team_id")) is int:
        rec["team_id"] = [rec["team_id"], "Team %d" % rec["team_id"]]
    if not rec.get("team_id") and rec.get("user_id"):
        rec["team_id"] = [1, "Sales"]
    if not rec.get("stage_id"):
        rec["stage_id"] = [1, "New"]
    for k in ("tag_ids",):
        if isinstance(rec.get(k), list) and rec[k] and isinstance(rec[k][0], list):
            ids = []
            for cmd in rec[k]:
                if cmd[0] == 6:
                    ids = list(cmd[2])
                elif cmd[0] == 4:
                    ids.append(cmd[1])
            rec[k] = ids
    rec["phone_sanitized"] = sanitize(rec.get("phone")) or sanitize(rec.get("mobile"))
    S.records["crm.lead"][rid] = rec
    S.followers[rid] = set() if (ctx or {}).get("mail_create_nosubscribe") else {uid + 1000}
    post_message(uid, rid, "<p>Lead/Opportunity created</p>", subtype=(4, "Lead/Opportunity Created"))
    return rid


def execute(uid, model, method, args, kw):
    user = S.users.get(uid)
    if model == "helpdesk.ticket" and HELPDESK["on"]:
        if method == "create":
            rid = S.next_id("helpdesk.ticket")
            S.records["helpdesk.ticket"][rid] = {"id": rid, **args[0]}
            return rid
        if method == "search_read":
            return [dict(r) for r in S.records["helpdesk.ticket"].values()]
    if model in PRODUCT_MODELS and S.product_module:
        return product_method(model, method, args, kw)
    if model not in MODEL_NAMES or MODEL_NAMES[model] is None:
        raise OdooError(2, "Object %s doesn't exist" % model, http=404, name="odoo.exceptions.UserError")
    if model == "crm.lead" and not user["crm"]:
        raise OdooError(4, "You are not allowed to access 'Lead/Opportunity' (crm.lead) records.\n\nThis operation "
                           "is allowed for the following groups:\n\t- Sales/Administrator\n\t- Sales/User: Own "
                           "Documents Only\n\nContact your administrator to request access if necessary.",
                        http=403, name="odoo.exceptions.AccessError")
    if S.fault_every and model == "crm.lead" and method in ("create", "write"):
        S.lead_writes += 1
        if S.lead_writes % S.fault_every == 0:
            # What PostgreSQL answers two transactions writing the same rows: Odoo passes it on as fault 1.
            raise OdooError(1, "psycopg2.errors.SerializationFailure: could not serialize access due to "
                               "concurrent update", traceback=True)
    if S.fault_next and S.fault_next.get("method") in (method, "*") and S.fault_next.get("model", model) == model:
        f = S.fault_next
        f["times"] = f.get("times", 1) - 1
        if f["times"] <= 0:
            S.fault_next = None
        raise OdooError(f.get("code", 2), f.get("message", "injected fault"), traceback=f.get("code", 2) == 1)
    if model == "ir.model" and method == "search":
        return [393] if evaluate({"model": "crm.lead"}, args[0]) else []
    if model == "ir.model.data" and method == "check_object_reference":
        module, xml_id = (args + [kw.get("module"), kw.get("xml_id")])[:2] if args else (kw["module"], kw["xml_id"])
        if (module, xml_id) == ("mail", "mt_note"):
            return ["mail.message.subtype", 2]
        if (module, xml_id) == ("mail", "mt_comment"):
            return ["mail.message.subtype", 1]
        raise OdooError(1, "ValueError: External ID not found in the system: %s.%s" % (module, xml_id),
                        traceback=True, http=500, name="builtins.ValueError")
    if model == "ir.model.fields" and method == "create":
        v = args[0]
        if not v.get("name", "").startswith("x_"):
            raise OdooError(2, "The operation cannot be completed: Custom fields must have a name that starts "
                               "with 'x_'!", http=422, name="odoo.exceptions.ValidationError")
        if v["name"] in S.fields:
            raise OdooError(2, "The operation cannot be completed: Field names must be unique per model.",
                            http=422, name="odoo.exceptions.ValidationError")
        meta = {"type": v["ttype"], "string": v.get("field_description", v["name"]), "required": False}
        if v["ttype"] == "selection":
            meta["selection"] = [[c[2]["value"], c[2]["name"]] for c in v.get("selection_ids", [])]
        S.fields[v["name"]] = meta
        fid = S.next_id("ir.model.fields", 2)
        S.records["ir.model.fields"][fid] = {"id": fid, "name": v["name"], "model_id": v.get("model_id")}
        return fid
    if model == "ir.model.fields" and method == "search_read":
        out = []
        for n, (name, meta) in enumerate(S.fields.items()):
            rec = {"id": 5000 + n, "name": name, "ttype": meta["type"], "model": "crm.lead", "state": "manual" if
                   name.startswith("x_") else "base", "field_description": meta["string"]}
            if evaluate(rec, args[0] if args else kw.get("domain", [])):
                out.append({k: rec[k] for k in (kw.get("fields") or rec)} | {"id": rec["id"]})
        return out
    if model == "ir.model.fields" and method == "write":
        names = list(S.fields)
        for i in args[0]:
            if 0 <= i - 5000 < len(names) and "field_description" in args[1]:
                S.fields[names[i - 5000]] = dict(S.fields[names[i - 5000]], string=args[1]["field_description"])
        return True
    if model == "res.users" and method == "create":
        v = args[0]
        uid2 = S.next_id("res.users")
        S.users[uid2] = {"login": v["login"], "password": v.get("password"), "crm": False}
        S.next_id("mail.message", 2)  # the new partner's and user's chatter messages
        return uid2
    if model == "crm.lead":
        return lead_method(method, args, kw, uid)
    if model == "res.users" and method == "read":
        return [{"id": i, "company_id": [1, "My Company"], "login": S.users[i]["login"], "partner_id": partner_of(i),
                 "name": user_name(i), "notification_type": S.users[i].get("notification_type", "email")}
                for i in (args[0] if args else kw.get("ids")) if i in S.users]
    if model == "res.users" and method == "write":
        for i in args[0]:
            if i in S.users and "notification_type" in args[1]:
                S.users[i]["notification_type"] = args[1]["notification_type"]
        return True
    if model == "ir.attachment":
        if method == "create":
            rid = S.next_id("ir.attachment")
            S.records["ir.attachment"][rid] = {"id": rid, "name": args[0]["name"],
                                              "mimetype": args[0].get("mimetype", "application/octet-stream")}
            return rid
        if method == "read":
            return [project(S.records["ir.attachment"][i], args[1] if len(args) > 1 else kw.get("fields"))
                    for i in args[0] if i in S.records["ir.attachment"]]
    if model == "res.company" and method == "read":
        country = [49, "Colombia"] if S.company_cc == "57" else [1, "Country +%s" % S.company_cc] if S.company_cc \
            else False
        return [{"id": 1, "name": "My Company", "country_id": country}] if 1 in args[0] else []
    if model == "res.users" and method == "context_get":
        return {"lang": "en_US", "tz": False, "uid": uid}
    if model == "res.users" and method == "has_group":
        group = args[-1] if args else kw.get("group_ext_id")
        return bool(S.leads_setting) if group == "crm.group_use_lead" else group == "base.group_user"
    if model in ("utm.source", "utm.medium", "crm.tag", "crm.team"):
        if method == "create":
            rid = S.next_id(model)
            S.records[model][rid] = {"id": rid, "name": args[0]["name"]}
            return rid
        if method == "search_read":
            return [project(r, kw.get("fields") or ["name"]) for r in search(model, args[0] if args else [])]
        if method == "search":
            return [r["id"] for r in search(model, args[0] if args else [])]
    if model == "phone.blacklist":
        return blacklist_method(method, args, kw)
    if model == "mail.message":
        if method == "create":
            vl = args[0] if isinstance(args[0], list) else [args[0]]
            out = []
            for v in vl:
                v = dict(v)
                sub = v.pop("subtype_id", False)
                extra = {k: v[k] for k in ("author_id", "email_from", "message_id", "attachment_ids", "date") if k in v}
                mid = post_message(uid, v.get("res_id"), v.get("body", ""), v.get("message_type", "notification"),
                                   (sub, "Note" if sub == 2 else "Discussions") if sub else None, v.get("model"),
                                   extra=extra)
                out.append(mid)  # created directly: nobody is notified
            return out if isinstance(args[0], list) else out[0]
        if method == "write":
            for i in args[0]:
                if i in S.records["mail.message"]:
                    S.records["mail.message"][i].update(
                        {k: v for k, v in args[1].items() if k == "body" or (k == "record_name" and S.version < 19)})
            return True
        if method == "unlink":
            refused = [i for i in args[0] if S.records["mail.message"].get(i, {}).get("message_type") == "user_notification"]
            if refused:
                # Odoo checks the whole call first: one message it refuses and none is deleted.
                raise OdooError(4, "The requested operation cannot be completed due to security restrictions. Please "
                                   "contact your system administrator.\n\n(Document type: Message, Operation: unlink) "
                                   "- (Records: %s, User: %d)" % (refused, uid), http=403,
                                name="odoo.exceptions.AccessError")
            for i in args[0]:
                m = S.records["mail.message"].get(i)
                if m is None:
                    continue
                lead = S.records["crm.lead"].get(m.get("res_id")) if m.get("model") == "crm.lead" else None
                if m.get("model") == "crm.lead" and lead is None:
                    continue
                for tid in m.get("tracking_value_ids", []):  # ondelete cascade
                    S.records["mail.tracking.value"].pop(tid, None)
                del S.records["mail.message"][i]
            return True
        if method in ("search_read", "read"):
            if method == "read":
                recs = [S.records["mail.message"][i] for i in args[0] if i in S.records["mail.message"]]
                fields = args[1] if len(args) > 1 else kw.get("fields")
            else:
                recs = search("mail.message", args[0] if args else kw.get("domain") or [], order=kw.get("order"),
                              limit=kw.get("limit"))
                fields = kw.get("fields")
            return [project(r, fields) for r in recs]
    raise OdooError(1, "AttributeError: The method '%s' does not exist on the model '%s'" % (method, model),
                    traceback=True, http=404, name="builtins.AttributeError")


def category_name(cid):
    """product.category's complete_name (its display name): the parents' names joined by " / "."""
    c = S.records["product.category"][cid]
    return (category_name(c["parent_id"]) + " / " if c["parent_id"] else "") + c["name"]


def product_view(model, r):
    """A product record as Odoo reads it: many2one as [id, display name]."""
    if model == "product.category":
        p = r["parent_id"]
        return {"id": r["id"], "name": r["name"], "complete_name": category_name(r["id"]),
                "parent_id": [p, category_name(p)] if p else False}
    c = r.get("categ_id")
    return {"id": r["id"], "name": r["name"], "sale_ok": r.get("sale_ok", True), "active": r.get("active", True),
            "categ_id": [c, category_name(c)] if c else False}


def product_method(model, method, args, kw):
    """product.template and product.category: create (a dict: an id, as 17 is called; a list: ids, as JSON-2 sends
    vals_list) and search_read (archived templates left out; templates by id, categories by complete_name)."""
    if method == "create":
        vl = args[0] if isinstance(args[0], list) else [args[0]]
        ids = []
        for v in vl:
            rid = S.next_id(model)
            rec = {"id": rid, "name": v["name"]}
            if model == "product.category":
                rec["parent_id"] = v.get("parent_id") or False
            else:
                rec.update(categ_id=v.get("categ_id") or (1 if S.version < 19 else False),
                           sale_ok=v.get("sale_ok", True), active=v.get("active", True))
            S.records[model][rid] = rec
            ids.append(rid)
        return ids if isinstance(args[0], list) else ids[0]
    if method == "search_read":
        domain = args[0] if args else kw.get("domain") or []
        recs = [product_view(model, r) for r in S.records[model].values()]
        recs = [r for r in recs if evaluate(r, domain) and (model != "product.template" or r["active"]
                                                             or any(t[0] == "active" for t in domain))]
        recs.sort(key=(lambda r: r["id"]) if model == "product.template" or kw.get("order") == "id"
                  else (lambda r: r["complete_name"]))
        fields = kw.get("fields") or (args[1] if len(args) > 1 else None)
        if kw.get("limit"):
            recs = recs[:kw["limit"]]
        return [{"id": r["id"], **{f: r[f] for f in fields if f != "id"}} if fields else r for r in recs]
    raise OdooError(1, "AttributeError: The method '%s' does not exist on the model '%s'" % (method, model),
                    traceback=True, http=404, name="builtins.AttributeError")


def blacklist_method(method, args, kw):
    """phone.blacklist as in Odoo 17's phone_validation: numbers sanitised to E.164 on create, one entry per
    number (create answers with the existing one, archived or not), archived entries hidden unless the context
    says active_test False."""
    recs = S.records["phone.blacklist"]
    active_test = (kw.get("context") or {}).get("active_test", True)
    if method in ("search", "search_read"):
        domain = args[0] if args else kw.get("domain", [])
        found = [r for r in sorted(recs.values(), key=lambda r: r["id"])
                 if (r["active"] or not active_test or any(isinstance(t, (list, tuple)) and t[0] == "active"
                                                           for t in domain)) and evaluate(r, domain)]
        if method == "search":
            return [r["id"] for r in found]
        return [project(r, kw.get("fields") or ["number", "active"]) for r in found]
    if method == "create":
        vals = args[0]
        number = sanitize(vals.get("number", ""))
        if not number:
            raise OdooError(2, "Invalid number %s: probably incorrectly formatted. Please correct the number and "
                               "try again." % vals.get("number"), http=422, name="odoo.exceptions.UserError")
        for r in recs.values():
            if r["number"] == number:
                return r["id"]
        rid = S.next_id("phone.blacklist")
        recs[rid] = {"id": rid, "_model": "phone.blacklist", "number": number, "active": vals.get("active", True)}
        return rid
    if method == "write":
        ids, vals = args[0], args[1]
        for i in ids:
            if i not in recs:
                raise OdooError(2, "Record does not exist or has been deleted.\n(Record: phone.blacklist(%d,), "
                                   "User: 2)" % i, http=404, name="odoo.exceptions.MissingError")
            recs[i].update({k: v for k, v in vals.items() if k in ("active", "number")})
        return True
    raise OdooError(1, "AttributeError: The method '%s' does not exist on the model 'phone.blacklist'" % method,
                    traceback=True, http=404, name="builtins.AttributeError")


def lead_method(method, args, kw, uid=2):
    recs = S.records["crm.lead"]
    if method == "create":
        vals = args[0]
        ctx = kw.get("context") or {}
        if isinstance(vals, list):
            return [lead_create(v, uid, ctx) for v in vals]
        return lead_create(vals, uid, ctx)
    if method == "default_get":
        names = args[0] if args else kw.get("fields") or kw.get("fields_list") or []
        defaults = {"type": "lead" if S.leads_setting else "opportunity", "user_id": uid, "active": True,
                    "priority": "0"}
        return {k: v for k, v in defaults.items() if k in names}
    if method in ("search", "search_read", "search_count"):
        domain = args[0] if args else kw.get("domain", [])
        found = search("crm.lead", domain, kw.get("order"), kw.get("limit"), kw.get("offset", 0))
        if method == "search_count":
            return len(found)
        if method == "search":
            return [r["id"] for r in found]
        fields = kw.get("fields") or (args[1] if len(args) > 1 else None)
        return [project(r, fields) for r in found]
    if method == "read":
        fields = args[1] if len(args) > 1 else kw.get("fields")
        out = [project(recs[i], fields) for i in args[0] if i in recs]
        for r in out:
            for f, model in (("source_id", "utm.source"), ("medium_id", "utm.medium")):
                if type(r.get(f)) is int:  # a many2one reads as [id, name]
                    r[f] = [r[f], S.records[model].get(r[f], {}).get("name", "?")]
        return out
    if method == "write":
        ids, vals = args[0], args[1]
        check_fields("crm.lead", vals)
        for i in ids:
            if i not in recs:
                raise OdooError(2, "Record does not exist or has been deleted.\n(Record: crm.lead(%d,), User: 2)" % i,
                                http=404, name="odoo.exceptions.MissingError")
        for i in ids:
            old = dict(recs[i])
            recs[i].update(vals)
            for k in ("user_id", "team_id"):
                if type(recs[i].get(k)) is int:
                    recs[i][k] = [recs[i][k], "%s %d" % (k, recs[i][k])]
            recs[i]["write_date"] = now()
            recs[i]["phone_sanitized"] = sanitize(recs[i].get("phone")) or sanitize(recs[i].get("mobile"))
            track(uid, recs[i], old, kw)
            assigned(uid, recs[i], old, kw)
        return True
    if method == "fields_get":
        names = args[0] if args else kw.get("allfields")
        attrs = kw.get("attributes") or ["string", "type", "required", "selection"]
        out = {}
        for name, meta in S.fields.items():
            if names and name not in names:
                continue
            out[name] = {a: meta[a] for a in attrs if a in meta}
        return out
    if method == "message_post":
        ids = args[0]
        body = kw.get("body", "")
        if not kw.get("body_is_html"):
            body = "<p>%s</p>" % html.escape(body, quote=False)
        comment = kw.get("subtype_xmlid") != "mail.mt_note"
        extra = {k: kw[k] for k in ("author_id", "email_from", "message_id", "attachment_ids", "partner_ids")
                 if k in kw}
        mid = post_message(uid, ids[0], body, kw.get("message_type", "notification"),
                           (1, "Discussions") if comment else (2, "Note"), extra=extra)
        fol = S.followers.setdefault(ids[0], set())
        if not (kw.get("context") or {}).get("mail_create_nosubscribe") and (S.version < 19 or comment):
            fol.add(uid + 1000)  # the poster follows (17: every post; 19: a Send message)
        # A Send message notifies the followers and the partners named; a note only the partners named.
        notify(mid, (sorted(fol) if comment else []) + list(kw.get("partner_ids") or []), uid)
        return [mid] if S.version >= 19 else mid
    if method == "read_group":
        domain, fields, groupby = args[0], args[1], args[2]
        g = groupby[0] if isinstance(groupby, list) else groupby
        lazy = kw.get("lazy", True)
        rows = {}
        if g == "stage_id":  # crm.lead's stages are expanded: empty ones are listed too
            rows = {m2o_key(st): 0 for st in STAGES}
        for r in search("crm.lead", domain):
            rows[m2o_key(r.get(g, False))] = rows.get(m2o_key(r.get(g, False)), 0) + 1
        out = []
        for k, n in rows.items():
            v = list(k) if isinstance(k, tuple) else k
            leaf = [g, "=", v[0] if isinstance(v, list) else v]
            row = {g: v, ("%s_count" % g if lazy else "__count"): n,
                   "__domain": (["&"] + domain + [leaf]) if domain else [leaf]}
            if g == "stage_id":
                row["__fold"] = False
            out.append(row)
        return out
    if method == "check_access_rights":
        return True if kw.get("raise_exception") is False or (len(args) > 1 and args[1] is False) else None
    if method == "has_access":
        if S.version < 18:
            raise OdooError(1, "AttributeError: The method 'has_access' does not exist on the model 'crm.lead'",
                            traceback=True, http=404, name="builtins.AttributeError")
        return True
    if method == "formatted_read_group":
        if S.version < 19:
            raise OdooError(1, "AttributeError: The method 'formatted_read_group' does not exist on the model "
                               "'crm.lead'", traceback=True, http=404, name="builtins.AttributeError")
        domain = args[0] if args else kw.get("domain", [])
        groupby = (args[1] if len(args) > 1 else kw.get("groupby")) or []
        aggs = (args[2] if len(args) > 2 else kw.get("aggregates")) or []
        groups = {}
        for r in search("crm.lead", domain):
            groups.setdefault(tuple(m2o_key(r.get(g, False)) for g in groupby), []).append(r)
        out = []
        for key, recs in groups.items():
            row = {g: (list(k) if isinstance(k, tuple) else k) for g, k in zip(groupby, key)}
            leaves = [[g, "=", k[0] if isinstance(k, tuple) else k] for g, k in zip(groupby, key)]
            row["__extra_domain"] = (["&"] * (len(leaves) - 1)) + leaves
            for a in aggs:
                if a == "__count":
                    row[a] = len(recs)
                elif a.endswith(":sum"):
                    row[a] = float(sum(r.get(a[:-4]) or 0 for r in recs))
            out.append(row)
        return out
    if method == "action_set_lost":
        for i in args[0]:
            recs[i]["active"] = False
            recs[i]["probability"] = 0.0
            S.next_id("mail.message")  # "Lead lost" in the chatter
        return None  # XML-RPC cannot marshal it: a fault after the work is done, as in Odoo
    if method == "unlink":
        for i in args[0]:
            recs.pop(i, None)
        return True
    raise OdooError(1, "AttributeError: The method '%s' does not exist on the model 'crm.lead'" % method,
                    traceback=True, http=404, name="builtins.AttributeError")


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    # Headers and body go out as two writes: without TCP_NODELAY, Nagle and the client's delayed ACK add 40 ms.
    disable_nagle_algorithm = True

    def log_message(self, *a):
        pass

    def send(self, status, body, ctype, headers=()):
        if getattr(self, "hold", False):
            self.held = (status, body, ctype, headers)  # sent once the lock is released (create_delay_ms)
            return
        data = body.encode() if isinstance(body, str) else body
        try:
            self.send_response(status)
            self.send_header("Content-Type", ctype)
            for k, v in headers:
                self.send_header(k, v)
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)
        except (BrokenPipeError, ConnectionResetError):
            pass  # the client gave up waiting; the work is done all the same, as in Odoo

    def xml(self, result=None, fault=None):
        if fault is not None:
            body = xmlrpc.client.dumps(xmlrpc.client.Fault(fault.code, fault.fault_string()), methodresponse=True)
        else:
            try:
                body = xmlrpc.client.dumps((result,), methodresponse=True, allow_none=False)
            except TypeError as e:
                body = xmlrpc.client.dumps(xmlrpc.client.Fault(1, OdooError(1, "TypeError: " + str(e),
                                                                             traceback=True).fault_string()),
                                           methodresponse=True)
        self.send(200, body, "text/xml; charset=utf-8")  # dumps() writes the XML declaration

    def do_GET(self):
        if self.path == "/json/2" or self.path.startswith("/json/2/"):
            return self.json2(self.rfile.read(int(self.headers.get("Content-Length") or 0)))
        with LOCK:
            if self.path == "/_log":
                return self.send(200, json.dumps(S.log), "application/json")
            if self.path == "/_tickets":
                return self.send(200, json.dumps(list(S.records["helpdesk.ticket"].values())), "application/json")
            if self.path == "/_leads":
                return self.send(200, json.dumps(list(S.records["crm.lead"].values())), "application/json")
            if self.path == "/_blacklist":
                return self.send(200, json.dumps(list(S.records["phone.blacklist"].values())), "application/json")
            if self.path == "/_messages":
                return self.send(200, json.dumps(list(S.records["mail.message"].values())), "application/json")
            if self.path == "/_mails":
                return self.send(200, json.dumps(S.mails), "application/json")
            if self.path == "/_notifications":
                return self.send(200, json.dumps(S.notifications), "application/json")
            if self.path == "/_followers":
                return self.send(200, json.dumps({str(k): sorted(v) for k, v in S.followers.items()}),
                                 "application/json")
            if self.path == "/_tracking":
                return self.send(200, json.dumps(list(S.records["mail.tracking.value"].values())),
                                 "application/json")
            if self.path in ("/json/version", "/web/version") and S.version >= 19:
                return self.send(200, json.dumps({"version_info": [S.version, 0, 0, "final", 0, ""],
                                                  "version": "%d.0" % S.version}),
                                 "application/json; charset=utf-8")
        self.send(404, "<!doctype html>\n<html lang=en>\n<title>404 Not Found</title>\n<h1>Not Found</h1>\n"
                       "<p>The requested URL was not found on the server.</p>\n", "text/html; charset=utf-8")

    def do_POST(self):
        n = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(n)
        if self.path != "/_control" and S.lock_until > time.time() and self.locked(raw):
            time.sleep(max(0.0, S.lock_until - time.time()))  # behind the lock: it runs when it is released
        self.hold, self.held, self.delay_after = True, None, 0
        self.post(raw)
        self.hold = False
        if self.held:
            if self.delay_after:
                time.sleep(self.delay_after / 1000.0)
            self.send(*self.held)

    def locked(self, raw):
        """Whether the lock holds this call up: a crm.lead create/write/unlink/message_post (row locks), or any
        crm.lead call (lock_reads: a table lock). Calls on other tables go on, as in PostgreSQL."""
        try:
            if self.path.startswith("/json/2/"):
                model, meth = self.path.split("/")[3:5]
            elif self.path == "/xmlrpc/2/object":
                params = xmlrpc.client.loads(raw, use_builtin_types=True)[0]
                model, meth = params[3], params[4]
            else:
                return False
        except Exception:
            return False
        return model == "crm.lead" and (S.lock_reads or meth in ("create", "write", "unlink", "message_post"))

    def post(self, raw):
        global S
        if self.path == "/_control":
            ctl = json.loads(raw or b"{}")
            with LOCK:
                if ctl.get("reset"):
                    S = State(ctl.get("x_fields", False), ctl.get("version", 17))
                if "helpdesk" in ctl:
                    HELPDESK["on"] = bool(ctl["helpdesk"])
                if "product_module" in ctl:
                    S.product_module = bool(ctl["product_module"])
                for p in ctl.get("products", []):
                    # {"name", "category", "sale_ok", "active"}: a category made (top level) when new.
                    cats = {c["name"]: i for i, c in S.records["product.category"].items()}
                    cid = cats.get(p.get("category")) or (product_method("product.category", "create",
                                                                          [{"name": p["category"]}], {})
                                                          if p.get("category") else False)
                    product_method("product.template", "create", [{"name": p["name"], "categ_id": cid,
                                   "sale_ok": p.get("sale_ok", True), "active": p.get("active", True)}], {})
                for k in ("latency_ms", "down", "fail_next", "fault_next", "fault_every", "leads_setting",
                          "create_delay_ms"):
                    if k in ctl:
                        setattr(S, k, ctl[k])
                if "user" in ctl:
                    u = ctl["user"]
                    uid_new = S.next_id("res.users")
                    S.users[uid_new] = {"login": u["login"], "password": u["password"], "name": u.get("name"),
                                        "crm": True, "notification_type": u.get("notification_type", "email")}
                    return self.send(200, json.dumps({"ok": True, "uid": uid_new, "partner_id": uid_new + 1000}),
                                     "application/json")
                if "company_country" in ctl:
                    S.company_cc = ctl["company_country"]  # existing leads keep theirs until written, as in Odoo
                if "x_source_label" in ctl and "x_source" in S.fields:
                    S.fields["x_source"] = dict(S.fields["x_source"], string=ctl["x_source_label"])
                if "lock_ms" in ctl:
                    S.lock_until = time.time() + ctl["lock_ms"] / 1000.0
                    S.lock_reads = bool(ctl.get("lock_reads"))
                if "version" in ctl:
                    S.version = ctl["version"]
            return self.send(200, '{"ok": true}', "application/json")
        with LOCK:
            latency, down = S.latency_ms, S.down
            failing = S.fail_next > 0
            if failing:
                S.fail_next -= 1
        if latency:
            time.sleep(latency / 1000.0)
        if down:
            return self.send(503, "<html><body><h1>503 Service Unavailable</h1></body></html>", "text/html")
        if failing:
            return self.send(500, "<html><body><h1>500 Internal Server Error</h1></body></html>", "text/html")
        if self.path == "/json/2" or self.path.startswith("/json/2/"):
            return self.json2(raw)
        if self.path not in ("/xmlrpc/2/common", "/xmlrpc/2/object"):
            return self.send(404, "<html><title>404 Not Found</title></html>", "text/html")
        if S.version >= 22:
            return self.send(404, "<html><title>404 Not Found</title></html>", "text/html")
        try:
            params, method = xmlrpc.client.loads(raw, use_builtin_types=True)
        except Exception:
            return self.xml(fault=OdooError(1, "xml.parsers.expat.ExpatError: not well-formed", traceback=True))
        with LOCK:
            # execute_kw is logged as the model's method, with its model, args and kwargs.
            if method == "execute_kw":
                S.log.append({"path": self.path, "method": params[4], "params": list(params[3:])})
            else:
                S.log.append({"path": self.path, "method": method, "params": [p for p in params if p != ARGS.password]})
            try:
                if self.path == "/xmlrpc/2/common":
                    if method == "version":
                        v = S.version
                        return self.xml({"server_version": "%d.0" % v, "server_version_info": [v, 0, 0, "final", 0, ""],
                                         "server_serie": "%d.0" % v, "protocol_version": 1})
                    if method in ("authenticate", "login"):
                        db, login, pw = params[0], params[1], params[2]
                        if db != ARGS.db:
                            raise OdooError(1, "psycopg2.OperationalError: connection to server at \"127.0.0.1\", "
                                               "port 5432 failed: FATAL:  database \"%s\" does not exist" % db,
                                            traceback=True)
                        for uid, u in S.users.items():
                            if u["login"] == login and u["password"] == pw:
                                return self.xml(uid)
                        return self.xml(False)
                    raise OdooError(1, "AttributeError: module has no attribute %r" % method, traceback=True)
                db, uid, pw, model, meth = params[:5]
                args = list(params[5]) if len(params) > 5 else []
                kw = dict(params[6]) if len(params) > 6 else {}
                if db != ARGS.db:
                    raise OdooError(1, "psycopg2.OperationalError: FATAL:  database \"%s\" does not exist" % db,
                                    traceback=True)
                if uid not in S.users or S.users[uid]["password"] != pw:
                    raise OdooError(3, "Access Denied")
                if (model, meth) == ("crm.lead", "create"):
                    self.delay_after = S.create_delay_ms  # committed now, answered late
                return self.xml(execute(uid, model, meth, args, kw))
            except OdooError as e:
                return self.xml(fault=e)
            except (KeyError, IndexError, TypeError) as e:
                # A bad call crashes a real server's method the same way: fault 1 with a traceback.
                return self.xml(fault=OdooError(1, "%s: %s" % (type(e).__name__, e), traceback=True))

    def json2(self, raw):
        """JSON-2 (Odoo 19 and later): odoo_json2 answers as Odoo's endpoint does and runs the calls with execute()."""
        if S.version < 19:
            return self.send(404, "<html><title>404 Not Found</title></html>", "text/html")

        def call(model, method, args, kw):
            if (model, method) == ("crm.lead", "create"):
                self.delay_after = S.create_delay_ms  # committed now, answered late
            return execute(2, model, method, args, kw)

        def log(model, method, body):
            S.log.append({"path": self.path, "method": method, "params": body})

        models = [m for m, label in MODEL_NAMES.items() if label] + (["helpdesk.ticket"] if HELPDESK["on"] else []) \
            + (list(PRODUCT_MODELS) if S.product_module else [])
        with LOCK:
            self.send(*odoo_json2.serve(self.command, self.path, self.headers, raw, db=ARGS.db, key=ARGS.password,
                                        models=models, call=call, log=log, fault=OdooError))


def main():
    global ARGS, S
    p = argparse.ArgumentParser()
    p.add_argument("--port", type=int, default=0)
    p.add_argument("--db", default="crmfix")
    p.add_argument("--password", default="admin")
    p.add_argument("--x-fields", action="store_true")
    p.add_argument("--version", type=int, default=17)
    ARGS = p.parse_args()
    S = State(ARGS.x_fields, ARGS.version)
    ThreadingHTTPServer.request_queue_size = 1024  # hundreds of calls at once in the benchmarks
    srv = ThreadingHTTPServer(("127.0.0.1", ARGS.port), Handler)
    srv.daemon_threads = True
    print("PORT %d" % srv.server_address[1], flush=True)
    srv.serve_forever()


if __name__ == "__main__":
    main()
