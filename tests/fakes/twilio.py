#!/usr/bin/env python3
"""A Twilio REST double for crmbridge's tests (docs/PROTOCOLS.md section 3).

POST /2010-04-01/Accounts/{AccountSid}/Messages.json with Basic auth
AccountSid:AuthToken and a form (To, From or MessagingServiceSid, Body or
ContentSid, StatusCallback) answers 201 with Twilio's JSON, or Twilio's error
JSON: 401 code 20003 for bad credentials, 400 code 21211 for a bad To, 400
code 21610 for an opted-out recipient, 400 21602 for a missing Body. A template
(ContentSid HX + 32 hex, ContentVariables a JSON object of strings) is checked
like Twilio does (21655 unknown ContentSid, 21656 bad ContentVariables) and
rendered into the message's body when its text is known ("contents").

Knobs, over HTTP on the same port:
  POST /_control  JSON {"latency_ms": N, "script": [{"status": 429, "code": 20429,
                  "retry_after": "1"}, {"status": 500}, {"drop": true}, ...],
                  "opted_out": ["+57..."], "callbacks": ["sent", "delivered"],
                  "contents": {"HX...": "Hola {{1}}, ..."}, "window_closed": ["+57..."],
                  "reset": true}
                  window_closed: free text (Body) to these numbers is accepted (201) and then fails with
                  63016 in its status callbacks, as WhatsApp does outside the 24-hour window; templates pass
                  "callbacks_first": true: the status callbacks are posted before the 201 is answered (they race
                  on the network; this is the order in which the sender has not yet recorded the SID)
                  "blocked": ["+57..."]: every message to these numbers is accepted (201) and then fails with
                  63014 in its status callbacks, as WhatsApp does when the user has blocked the business
                  script entries answer the next requests in turn, then normal service resumes;
                  "drop" closes the connection without an answer.
                  "media": {"ME...": {"type": "audio/ogg", "b64": "..."}}, "media_redirect": "URL"
  GET  /2010-04-01/Accounts/{sid}/Messages/MM.../Media/ME...  an inbound message's media: Basic auth, then
                  307 to the CDN (/_cdn/ME... on this host, or media_redirect), which serves the bytes
  GET  /_media_log  the media requests (path, whether credentials came with them)
  GET  /v1/Content/HX...  the Content API (content.twilio.com): Basic auth, the template as Twilio describes it
                  ("types": {"twilio/text": {"body": ...}}, "variables", ...); a "contents" value that is an
                  object is served as the template's "types"; 404 code 20404 for an unknown SID
  GET  /_content_log  the Content API requests (SID, whether the credentials were right)
  GET  /_log      JSON list of every message request received (accepted or not)
  GET  /2010-04-01/Accounts/{sid}/Messages.json?To=&From=&PageSize=  Twilio's list of the messages
                  created, newest first (what the sender reads after an interrupted attempt)

With --callback-target URL, each accepted message gets signed status
callbacks (X-Twilio-Signature over its StatusCallback URL, as Twilio signs)
POSTed to URL + the StatusCallback's path and query.
Prints "PORT <n>" on stdout once listening.
"""

import argparse
import base64
import hashlib
import hmac
import json
import re
import secrets
import sys
import threading
import time
import urllib.parse
import urllib.request
from email.utils import formatdate
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

STATE = {"latency_ms": 0, "script": [], "opted_out": set(), "callbacks": [], "log": [], "messages": [], "lists": 0,
         "contents": {}, "window_closed": set(), "blocked": set()}
LOCK = threading.Lock()
ARGS = None


def content_body(c):
    """The text of a template: a string, or the first body among its types (as the daemon reads it)."""
    if isinstance(c, str):
        return c
    for t in ("twilio/text", "twilio/media", "twilio/quick-reply", "twilio/call-to-action", "twilio/list-picker",
              "whatsapp/card"):
        if isinstance(c.get(t), dict) and isinstance(c[t].get("body"), str):
            return c[t]["body"]
    return ""


def twilio_error(code, message, status):
    return status, {"code": code, "message": message, "more_info": "https://www.twilio.com/docs/errors/%d" % code,
                    "status": status}


def sign(url, params):
    data = url + "".join(k + v for k, v in sorted(params))
    return base64.b64encode(hmac.new(ARGS.auth_token.encode(), data.encode(), hashlib.sha1).digest()).decode()


def send_callbacks(msg, statuses):
    cb = msg.get("StatusCallback")
    if not cb or not ARGS.callback_target:
        return
    u = urllib.parse.urlsplit(cb)
    target = ARGS.callback_target.rstrip("/") + u.path + ("?" + u.query if u.query else "")
    for st in statuses:
        params = [("MessageSid", msg["sid"]), ("SmsSid", msg["sid"]), ("MessageStatus", st), ("SmsStatus", st),
                  ("To", msg["To"]), ("From", msg.get("From", "")), ("AccountSid", ARGS.account_sid),
                  ("ApiVersion", "2010-04-01")]
        m = re.match(r"(failed|undelivered):(\d+)", st)
        if m:
            params = [(k, m.group(1) if k in ("MessageStatus", "SmsStatus") else v) for k, v in params]
            params.append(("ErrorCode", m.group(2)))
        body = urllib.parse.urlencode(params).encode()
        req = urllib.request.Request(target, data=body, method="POST", headers={
            "Content-Type": "application/x-www-form-urlencoded", "X-Twilio-Signature": sign(cb, params)})
        try:
            urllib.request.urlopen(req, timeout=5).read()
        except Exception as e:  # the daemon's answer is recorded by the daemon, not here
            print("callback failed: %s" % e, file=sys.stderr)


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    # Headers and body go out as two writes: without TCP_NODELAY, Nagle and the client's delayed ACK add 40 ms.
    disable_nagle_algorithm = True

    def log_message(self, fmt, *a):
        pass

    def reply(self, status, obj, headers=None):
        data = json.dumps(obj).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        for k, v in (headers or {}).items():
            self.send_header(k, v)
        self.end_headers()
        self.wfile.write(data)

    def do_GET(self):
        if self.path == "/_log":
            with LOCK:
                return self.reply(200, STATE["log"])
        if self.path == "/_media_log":
            with LOCK:
                return self.reply(200, STATE.setdefault("media_log", []))
        if self.path == "/_content_log":
            with LOCK:
                return self.reply(200, STATE.setdefault("content_log", []))
        cm = re.fullmatch(r"/v1/Content/([^/?]+)", self.path)
        if cm:
            auth = self.headers.get("Authorization", "")
            want = "Basic " + base64.b64encode(("%s:%s" % (ARGS.account_sid, ARGS.auth_token)).encode()).decode()
            ok_auth = hmac.compare_digest(auth, want)
            with LOCK:
                STATE.setdefault("content_log", []).append({"sid": cm.group(1), "auth_ok": ok_auth})
                c = STATE["contents"].get(cm.group(1))
            if not ok_auth:
                return self.reply(*twilio_error(20003, "Authentication Error - invalid username", 401))
            if c is None:
                return self.reply(*twilio_error(20404, "The requested resource /v1/Content/%s was not found"
                                                % cm.group(1), 404))
            url = "https://content.twilio.com/v1/Content/" + cm.group(1)
            return self.reply(200, {
                "sid": cm.group(1), "account_sid": ARGS.account_sid, "friendly_name": "crmbridge_test",
                "language": "es", "variables": {"1": "Cliente"},
                "types": {"twilio/text": {"body": c}} if isinstance(c, str) else c,
                "url": url, "date_created": "2026-11-01T10:00:00Z", "date_updated": "2026-11-01T10:00:00Z",
                "links": {"approval_fetch": url + "/ApprovalRequests",
                          "approval_create": url + "/ApprovalRequests/whatsapp"}})
        # Media of inbound messages: Basic auth, then a redirect to the CDN (here /_cdn on this host, or
        # wherever "media_redirect" says), which serves the bytes without credentials.
        mm = re.fullmatch(r"/2010-04-01/Accounts/([^/]+)/Messages/(MM\w+)/Media/(ME\w+)", self.path)
        if mm:
            auth = self.headers.get("Authorization", "")
            want = "Basic " + base64.b64encode(("%s:%s" % (ARGS.account_sid, ARGS.auth_token)).encode()).decode()
            with LOCK:
                STATE.setdefault("media_log", []).append({"path": self.path, "auth": bool(auth)})
                item = STATE.setdefault("media", {}).get(mm.group(3))
                redirect = STATE.get("media_redirect")
            if not hmac.compare_digest(auth, want) or mm.group(1) != ARGS.account_sid:
                return self.reply(*twilio_error(20003, "Authentication Error - invalid username", 401))
            if item is None:
                return self.reply(*twilio_error(20404, "The requested resource %s was not found" % self.path, 404))
            self.send_response(307)
            self.send_header("Location", redirect or "http://%s/_cdn/%s" % (self.headers.get("Host"), mm.group(3)))
            self.send_header("Content-Length", "0")
            self.end_headers()
            return None
        cdn = re.fullmatch(r"/_cdn/(ME\w+)", self.path)
        if cdn:
            with LOCK:
                STATE.setdefault("media_log", []).append({"path": self.path,
                                                          "auth": bool(self.headers.get("Authorization"))})
                item = STATE.setdefault("media", {}).get(cdn.group(1))
            if item is None:
                return self.reply(404, {"message": "not found"})
            data = base64.b64decode(item["b64"])
            self.send_response(200)
            self.send_header("Content-Type", item["type"])
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)
            return None
        # Twilio's message list: newest first, filtered by To and From, PageSize at most 1000.
        u = urllib.parse.urlsplit(self.path)
        m = re.fullmatch(r"/2010-04-01/Accounts/([^/]+)/Messages\.json", u.path)
        if m:
            auth = self.headers.get("Authorization", "")
            want = "Basic " + base64.b64encode(("%s:%s" % (ARGS.account_sid, ARGS.auth_token)).encode()).decode()
            if not hmac.compare_digest(auth, want) or m.group(1) != ARGS.account_sid:
                return self.reply(*twilio_error(20003, "Authentication Error - invalid username", 401))
            q = dict(urllib.parse.parse_qsl(u.query, keep_blank_values=True))
            size = max(1, min(1000, int(q.get("PageSize", "50") or 50)))
            with LOCK:
                STATE["lists"] += 1
                msgs = [x for x in reversed(STATE["messages"])
                        if ("To" not in q or x["to"] == q["To"]) and ("From" not in q or x["from"] == q["From"])]
            return self.reply(200, {"messages": msgs[:size], "end": min(size, len(msgs)) - 1, "page": 0,
                                    "page_size": size, "start": 0, "next_page_uri": None, "previous_page_uri": None,
                                    "first_page_uri": u.path + "?PageSize=%d&Page=0" % size, "uri": self.path})
        self.reply(*twilio_error(20404, "The requested resource was not found", 404))

    def do_POST(self):
        n = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(n)
        if self.path == "/_control":
            ctl = json.loads(raw or b"{}")
            with LOCK:
                if ctl.get("reset"):
                    STATE.update(latency_ms=0, script=[], opted_out=set(), callbacks=[], log=[], messages=[], lists=0,
                                 contents={}, window_closed=set(), blocked=set(), content_log=[], callbacks_first=False)
                if "contents" in ctl:
                    STATE["contents"] = dict(ctl["contents"])
                if "window_closed" in ctl:
                    STATE["window_closed"] = set(ctl["window_closed"])
                if "blocked" in ctl:
                    STATE["blocked"] = set(ctl["blocked"])
                if "media" in ctl:
                    STATE.setdefault("media", {}).update(ctl["media"])
                if "media_redirect" in ctl:
                    STATE["media_redirect"] = ctl["media_redirect"]
                if "callbacks_first" in ctl:
                    STATE["callbacks_first"] = bool(ctl["callbacks_first"])
                for k in ("latency_ms", "script", "callbacks"):
                    if k in ctl:
                        STATE[k] = ctl[k]
                if "opted_out" in ctl:
                    STATE["opted_out"] = set(ctl["opted_out"])
            return self.reply(200, {"ok": True})
        m = re.fullmatch(r"/2010-04-01/Accounts/([^/]+)/Messages\.json", self.path)
        if not m:
            return self.reply(*twilio_error(20404, "The requested resource %s was not found" % self.path, 404))
        form = dict(urllib.parse.parse_qsl(raw.decode(), keep_blank_values=True))
        entry = {"time": time.time(), "form": form, "auth_ok": False, "answer": None}
        with LOCK:
            STATE["log"].append(entry)
            latency = STATE["latency_ms"]
            step = STATE["script"].pop(0) if STATE["script"] else None
            opted_out = set(STATE["opted_out"])
            callbacks = list(STATE["callbacks"])
            contents = dict(STATE["contents"])
            closed = set(STATE["window_closed"])
            blocked = set(STATE["blocked"])
            first = STATE.get("callbacks_first", False)
        if latency:
            time.sleep(latency / 1000.0)
        auth = self.headers.get("Authorization", "")
        want = "Basic " + base64.b64encode(("%s:%s" % (ARGS.account_sid, ARGS.auth_token)).encode()).decode()
        entry["auth_ok"] = hmac.compare_digest(auth, want) and m.group(1) == ARGS.account_sid
        if step is not None:
            entry["answer"] = step
            if step.get("drop"):
                self.close_connection = True
                self.connection.shutdown(2)
                return
            st = step.get("status", 500)
            code = step.get("code", 20500 if st >= 500 else 20001)
            hdr = {"Retry-After": step["retry_after"]} if "retry_after" in step else {}
            return self.reply(st, {"code": code, "message": step.get("message", "scripted failure"),
                                   "more_info": "https://www.twilio.com/docs/errors/%d" % code, "status": st}, hdr)
        if not entry["auth_ok"]:
            entry["answer"] = 401
            return self.reply(*twilio_error(20003, "Authentication Error - invalid username", 401))
        to = form.get("To", "")
        if not re.fullmatch(r"whatsapp:\+[1-9]\d{6,14}", to):
            entry["answer"] = 21211
            return self.reply(*twilio_error(21211, "The 'To' number %s is not a valid phone number." % to, 400))
        if "From" not in form and "MessagingServiceSid" not in form:
            entry["answer"] = 21603
            return self.reply(*twilio_error(21603, "A 'From' or 'MessagingServiceSid' parameter is required", 400))
        if not form.get("Body") and not form.get("ContentSid"):
            entry["answer"] = 21602
            return self.reply(*twilio_error(21602, "Message body is required.", 400))
        body = form.get("Body", "")
        if form.get("ContentSid"):
            csid = form["ContentSid"]
            if not re.fullmatch(r"HX[0-9a-fA-F]{32}", csid) or (contents and csid not in contents):
                entry["answer"] = 21655
                return self.reply(*twilio_error(21655, "The ContentSid is Invalid.", 400))
            try:
                cvars = json.loads(form.get("ContentVariables") or "{}")
                assert isinstance(cvars, dict) and all(isinstance(v, str) for v in cvars.values())
            except (ValueError, AssertionError):
                entry["answer"] = 21656
                return self.reply(*twilio_error(21656, "The ContentVariables Parameter is invalid.", 400))
            body = content_body(contents.get(csid, ""))
            for k, v in cvars.items():
                body = body.replace("{{%s}}" % k, v)
        if len(form.get("Body", "")) > 1600:
            entry["answer"] = 21617
            return self.reply(*twilio_error(21617, "The concatenated message body exceeds the 1600 character limit.",
                                            400))
        if to[len("whatsapp:"):] in opted_out:
            entry["answer"] = 21610
            return self.reply(*twilio_error(21610, "Attempt to send to unsubscribed recipient", 400))
        sid = "SM" + secrets.token_hex(16)
        now = formatdate(usegmt=True).replace("GMT", "+0000")
        msg = {"account_sid": ARGS.account_sid, "api_version": "2010-04-01", "body": body,
               "date_created": now, "date_sent": None, "date_updated": now, "direction": "outbound-api",
               "error_code": None, "error_message": None, "from": form.get("From"),
               "messaging_service_sid": form.get("MessagingServiceSid"), "num_media": "0", "num_segments": "1",
               "price": None, "price_unit": None, "sid": sid, "status": "queued",
               "subresource_uris": {"media": "/2010-04-01/Accounts/%s/Messages/%s/Media.json" % (ARGS.account_sid,
                                                                                                  sid)},
               "to": to, "uri": "/2010-04-01/Accounts/%s/Messages/%s.json" % (ARGS.account_sid, sid)}
        entry["answer"] = 201
        entry["sid"] = sid
        with LOCK:
            STATE["messages"].append(msg)
        if not form.get("ContentSid") and to[len("whatsapp:"):] in closed:
            # Outside the window WhatsApp refuses free text after Twilio accepted it.
            callbacks = ["failed:63016"]
        if to[len("whatsapp:"):] in blocked:
            callbacks = ["failed:63014"]
        form["sid"] = sid
        if callbacks and first:
            # The report reaches the daemon before Twilio's answer to the POST does (the two race on the network).
            send_callbacks(form, callbacks)
        self.reply(201, msg)
        if callbacks and not first:
            threading.Thread(target=send_callbacks, args=(form, callbacks), daemon=True).start()


def main():
    global ARGS
    p = argparse.ArgumentParser()
    p.add_argument("--port", type=int, default=0)
    p.add_argument("--account-sid", default="AC" + "0" * 32)
    p.add_argument("--auth-token", default="12345")
    p.add_argument("--callback-target", default=None)
    ARGS = p.parse_args()
    srv = ThreadingHTTPServer(("127.0.0.1", ARGS.port), Handler)
    srv.daemon_threads = True
    print("PORT %d" % srv.server_address[1], flush=True)
    srv.serve_forever()


if __name__ == "__main__":
    main()
