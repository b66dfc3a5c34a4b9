#!/usr/bin/env python3
"""An Odoo double for crmbridge's tests: XML-RPC (/xmlrpc/2/common, /xmlrpc/2/object) and JSON-2
(/json/2/<model>/<method>), answering like the recorded Odoo 17 exchanges in tests/data/odoo17.

Odoo marshals XML-RPC with Python's xmlrpc.client, as this double does, so answers have the same bytes'
shape; faults carry the same codes and the same last line (code 1 strings are tracebacks).
In memory: crm.lead (phone_sanitized computed, archived leads hidden from default searches), ir.model,
ir.model.fields (x_ fields appear on crm.lead once created), utm.source, utm.medium, crm.tag,
mail.message (message_post escapes a plain body, keeps it with body_is_html), res.users (a user
without CRM rights gets fault 4).

Knobs, POST /_control JSON: {"reset": true, "x_fields": true|false, "version": 17|19, "latency_ms": N,
"down": true|false (503 for everything), "fail_next": N (the next N calls answer HTTP 500),
"fault_next": {"method": "write", "code": 2, "message": "..."},
"fault_every": N (every Nth crm.lead create/write answers fault 1, a serialization failure) }. GET /_log lists the calls;
GET /_leads dumps crm.lead. Prints "PORT <n>".
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
    "x_source": {"type": "char", "string": "Source", "required": False},
    "x_product_interest": {"type": "char", "string": "Product interest", "required": False},
    "x_budget_range": {"type": "char", "string": "Budget range", "required": False},
    "x_ai_confidence": {"type": "float", "string": "AI confidence", "required": False},
    "x_quality_score": {"type": "selection", "string": "Quality score", "required": False,
                        "selection": [["hot", "Hot"], ["warm", "Warm"], ["cold", "Cold"]]},
}
MODEL_NAMES = {"crm.lead": "Lead/Opportunity", "phone.blacklist": "Phone Blacklist", "utm.source": "Source", "utm.medium": "Medium", "crm.tag": "Tag",
               "mail.message": "Message", "ir.model": "Models", "ir.model.fields": "Fields", "res.users": "User",
               "ir.model.data": "Model Data", "helpdesk.ticket": None}
HELPDESK = {"on": False}


def now():
    return datetime.datetime.utcnow().strftime("%Y-%m-%d %H:%M:%S")


def sanitize(phone):
    if not phone:
        return False
    digits = re.sub(r"[^\d+]", "", phone)
    return digits if digits.startswith("+") and len(digits) >= 8 else False


class State:
    def __init__(self, x_fields=False, version=17):
        self.version = version
        self.fields = dict(LEAD_FIELDS)
        if x_fields:
            self.fields.update(X_FIELDS)
        self.records = {m: {} for m in ["crm.lead", "utm.source", "utm.medium", "crm.tag", "mail.message",
                                        "ir.model.fields", "res.users", "helpdesk.ticket", "phone.blacklist"]}
        # Sequences start where the recorded session's did, so replayed ids match the recordings.
        self.seq = {"crm.lead": 0, "utm.source": 9, "utm.medium": 9, "crm.tag": 0, "mail.message": 7,
                    "ir.model.fields": 3724, "res.users": 5, "helpdesk.ticket": 0, "phone.blacklist": 0}
        self.users = {2: {"login": "admin", "password": ARGS.password, "crm": True}}
        self.log = []
        self.latency_ms = 0
        self.down = False
        self.fail_next = 0
        self.fault_next = None
        self.fault_every = 0
        self.lead_writes = 0

    def next_id(self, model, step=1):
        self.seq[model] += step
        return self.seq[model]


S = None


def check_fields(model, vals):
    if model != "crm.lead":
        return
    for k, v in vals.items():
        if k not in S.fields:
            raise OdooError(1, "ValueError: Invalid field %r on model 'crm.lead'" % k, traceback=True, http=422,
                            name="builtins.ValueError")
        f = S.fields[k]
        if f["type"] == "selection" and v is not False and v not in [s[0] for s in f["selection"]]:
            raise OdooError(1, "ValueError: Wrong value for crm.lead.%s: %r" % (k, v), traceback=True, http=422,
                            name="builtins.ValueError")


def match(rec, term):
    field, op, value = term
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
    if op in ("ilike", "like"):
        return isinstance(v, str) and str(value).lower() in v.lower()
    if op == "=ilike":
        return isinstance(v, str) and v.lower() == str(value).lower()
    if op in (">", "<", ">=", "<="):
        return v is not False and eval("v %s value" % op, {"v": v, "value": value})
    raise OdooError(1, "ValueError: Invalid leaf %r" % (term,), traceback=True)


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


def search(model, domain, order=None, limit=None, offset=0):
    recs = list(S.records[model].values())
    if model == "crm.lead" and not any(isinstance(t, (list, tuple)) and t[0] == "active" for t in domain):
        recs = [r for r in recs if r.get("active", True)]  # archived leads are hidden by default
    recs = [r for r in recs if evaluate(r, domain)]
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


def lead_create(vals):
    check_fields("crm.lead", vals)
    if not vals.get("name"):
        S.next_id("crm.lead")  # the insert fails after taking a sequence value, as in PostgreSQL
        raise OdooError(2, "The operation cannot be completed:\n- Create/update: a mandatory field is not set.\n"
                           "- Delete: another model requires the record being deleted. If possible, archive it "
                           "instead.\n\nModel: Lead/Opportunity (crm.lead)\nField: Opportunity (name)\n",
                        http=422, name="odoo.exceptions.ValidationError")
    rid = S.next_id("crm.lead")
    rec = {"id": rid, "_model": "crm.lead", "active": True, "probability": 0.0, "stage_id": [1, "New"],
           "type": "opportunity", "priority": "0", "create_date": now(), "write_date": now(), "tag_ids": []}
    for k in S.fields:
        rec.setdefault(k, False)
    rec.update(vals)
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
    S.next_id("mail.message")  # Odoo logs the creation in the chatter
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
    if S.fault_next and S.fault_next.get("method") in (method, "*"):
        f, S.fault_next = S.fault_next, None
        raise OdooError(f.get("code", 2), f.get("message", "injected fault"), traceback=f.get("code", 2) == 1)
    if model == "ir.model" and method == "search":
        return [393] if evaluate({"model": "crm.lead"}, args[0]) else []
    if model == "ir.model.data" and method == "check_object_reference":
        return ["mail.message.subtype", 2]
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
        for name, meta in S.fields.items():
            rec = {"id": 0, "name": name, "ttype": meta["type"], "model": "crm.lead", "state": "manual" if
                   name.startswith("x_") else "base"}
            if evaluate(rec, args[0] if args else kw.get("domain", [])):
                out.append({k: rec[k] for k in (kw.get("fields") or rec)} | {"id": rec["id"]})
        return out
    if model == "res.users" and method == "create":
        v = args[0]
        uid2 = S.next_id("res.users")
        S.users[uid2] = {"login": v["login"], "password": v.get("password"), "crm": False}
        S.next_id("mail.message", 2)  # the new partner's and user's chatter messages
        return uid2
    if model == "crm.lead":
        return lead_method(method, args, kw)
    if model in ("utm.source", "utm.medium", "crm.tag"):
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
            v = dict(args[0])
            mid = S.next_id("mail.message")
            S.records["mail.message"][mid] = {"id": mid, "subtype_id": [2, "Note"], **v}
            return mid
        if method in ("search_read", "read"):
            if method == "read":
                recs = [S.records["mail.message"][i] for i in args[0] if i in S.records["mail.message"]]
                fields = args[1] if len(args) > 1 else kw.get("fields")
            else:
                recs = search("mail.message", args[0] if args else [])
                fields = kw.get("fields")
            return [project(r, fields) for r in recs]
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


def lead_method(method, args, kw):
    recs = S.records["crm.lead"]
    if method == "create":
        vals = args[0]
        if isinstance(vals, list):
            return [lead_create(v) for v in vals]
        return lead_create(vals)
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
        return [project(recs[i], fields) for i in args[0] if i in recs]
    if method == "write":
        ids, vals = args[0], args[1]
        check_fields("crm.lead", vals)
        for i in ids:
            if i not in recs:
                raise OdooError(2, "Record does not exist or has been deleted.\n(Record: crm.lead(%d,), User: 2)" % i,
                                http=404, name="odoo.exceptions.MissingError")
        for i in ids:
            recs[i].update(vals)
            recs[i]["write_date"] = now()
            recs[i]["phone_sanitized"] = sanitize(recs[i].get("phone")) or sanitize(recs[i].get("mobile"))
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
        mid = S.next_id("mail.message")
        S.records["mail.message"][mid] = {"id": mid, "model": "crm.lead", "res_id": ids[0], "body": body,
                                          "message_type": kw.get("message_type", "notification"),
                                          "subtype_id": [2, "Note"]}
        return [mid] if S.version >= 19 else mid
    if method == "read_group":
        domain, fields, groupby = args[0], args[1], args[2]
        g = groupby[0] if isinstance(groupby, list) else groupby
        rows = {}
        for r in search("crm.lead", domain):
            rows.setdefault(r.get(g, False), 0)
            rows[r.get(g, False)] += 1
        return [{g: k, "__count": n, "__domain": ["&"] + domain + [[g, "=", k]]} for k, n in rows.items()]
    if method == "check_access_rights":
        return True
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

    def send(self, status, body, ctype):
        data = body.encode() if isinstance(body, str) else body
        self.send_response(status)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

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
        self.send(404, "Not Found", "text/plain")

    def do_POST(self):
        n = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(n)
        global S
        if self.path == "/_control":
            ctl = json.loads(raw or b"{}")
            with LOCK:
                if ctl.get("reset"):
                    S = State(ctl.get("x_fields", False), ctl.get("version", 17))
                if "helpdesk" in ctl:
                    HELPDESK["on"] = bool(ctl["helpdesk"])
                for k in ("latency_ms", "down", "fail_next", "fault_next", "fault_every"):
                    if k in ctl:
                        setattr(S, k, ctl[k])
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
        if self.path.startswith("/json/2/"):
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
                return self.xml(execute(uid, model, meth, args, kw))
            except OdooError as e:
                return self.xml(fault=e)
            except (KeyError, IndexError, TypeError) as e:
                # A bad call crashes a real server's method the same way: fault 1 with a traceback.
                return self.xml(fault=OdooError(1, "%s: %s" % (type(e).__name__, e), traceback=True))

    def json2(self, raw):
        m = re.fullmatch(r"/json/2/([\w.]+)/(\w+)", self.path)
        auth = self.headers.get("Authorization", "")
        if S.version < 19:
            return self.send(404, "<html><title>404 Not Found</title></html>", "text/html")
        with LOCK:
            try:
                if not m:
                    raise OdooError(2, "Not found", http=404)
                if not auth.lower().startswith("bearer ") or auth[7:] != ARGS.password:
                    raise OdooError(3, "Invalid apikey", http=401, name="odoo.exceptions.AccessDenied")
                model, meth = m.group(1), m.group(2)
                body = json.loads(raw or b"{}")
                S.log.append({"path": self.path, "method": meth, "params": body})
                ids = body.pop("ids", None)
                body.pop("context", None)
                if meth in ("search", "search_read", "search_count", "read_group"):
                    args = [body.pop("domain", [])]
                    if meth == "read_group":
                        args += [body.pop("fields", []), body.pop("groupby", [])]
                elif meth == "create":
                    # JSON-2's create takes a list and answers a list of ids.
                    vals_list = body.pop("vals_list")
                    res = [execute(2, model, "create", [v], body) for v in vals_list]
                    return self.send(200, json.dumps(res), "application/json")
                elif meth == "write":
                    args = [ids, body.pop("vals")]
                elif meth == "read":
                    args = [ids, body.pop("fields", None)]
                elif meth in ("message_post", "action_set_lost", "unlink"):
                    args = [ids]
                elif meth == "fields_get":
                    args = [body.pop("allfields", None)]
                else:
                    args = [ids] if ids is not None else []
                res = execute(2, model, meth, args, body)
                if meth == "message_post" and not isinstance(res, list):
                    res = [res]
                return self.send(200, json.dumps(res), "application/json")
            except (KeyError, IndexError, TypeError) as e:
                return self.send(500, json.dumps({"name": "builtins." + type(e).__name__, "message": str(e),
                                                  "arguments": [str(e)], "context": {}, "debug": repr(e)}),
                                 "application/json")
            except OdooError as e:
                return self.send(e.http if e.code != 3 else 401, json.dumps(
                    {"name": e.name, "message": e.message, "arguments": [e.message], "context": {},
                     "debug": e.fault_string()}), "application/json")


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
