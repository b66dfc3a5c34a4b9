#!/usr/bin/env python3
"""Replays a conversation case (the format of tests/data/conversations) against a running crmbridged:
each customer line is sent as a signed Twilio webhook, the bot's reply is read back from the
conversation's history (admin API), and both are printed; then the conversation's state.

usage: scripts/replay.py [--url http://127.0.0.1:8080] [--phone +573001112233] CASE.json
Environment: TWILIO_AUTH_TOKEN and CRMBRIDGE_PUBLIC_URL as the daemon has them; CRMBRIDGE_ADMIN_TOKEN if set.
"""

import argparse
import base64
import hashlib
import hmac
import json
import os
import sys
import time
import urllib.parse
import urllib.request


def sign(token, url, params):
    data = url + "".join(k + v for k, v in sorted(params))
    return base64.b64encode(hmac.new(token.encode(), data.encode(), hashlib.sha1).digest()).decode()


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--url", default="http://127.0.0.1:8080")
    ap.add_argument("--phone", default="+573001112233")
    ap.add_argument("--reset", action="store_true", help="start the conversation afresh")
    ap.add_argument("case")
    a = ap.parse_args()
    token = os.environ.get("TWILIO_AUTH_TOKEN", "")
    public = os.environ.get("CRMBRIDGE_PUBLIC_URL", a.url).rstrip("/")
    admin = os.environ.get("CRMBRIDGE_ADMIN_TOKEN")
    hdr = {"Authorization": "Bearer " + admin} if admin else {}
    case = json.load(open(a.case))
    lines = [m["text"] for m in case["messages"] if m["from"] == "user"]

    def history():
        req = urllib.request.Request("%s/api/conversation/%s/history" % (a.url, urllib.parse.quote(a.phone)),
                                     headers=hdr)
        try:
            return json.loads(urllib.request.urlopen(req, timeout=5).read())["history"]
        except urllib.error.HTTPError:
            return []

    if a.reset:
        req = urllib.request.Request("%s/api/conversation/%s/reset" % (a.url, urllib.parse.quote(a.phone)),
                                     data=b"", headers=hdr, method="POST")
        urllib.request.urlopen(req, timeout=5).read()
    start = len([h for h in history() if h["dir"] == "out"])
    stamp = int(time.time() * 1000)
    for i, line in enumerate(lines):
        params = [("MessageSid", "SM%032x" % (stamp * 100 + i)), ("From", "whatsapp:" + a.phone),
                  ("To", "whatsapp:+14155238886"), ("Body", line), ("NumMedia", "0"), ("ProfileName", "Demo")]
        body = urllib.parse.urlencode(params).encode()
        req = urllib.request.Request(a.url + "/api/webhook/whatsapp", data=body, headers={
            "Content-Type": "application/x-www-form-urlencoded",
            "X-Twilio-Signature": sign(token, public + "/api/webhook/whatsapp", params)})
        urllib.request.urlopen(req, timeout=10).read()
        print("customer: %s" % line, flush=True)
        end = time.time() + 20
        while time.time() < end:
            outs = [h["text"] for h in history() if h["dir"] == "out"]
            if len(outs) >= start + i + 1:
                print("bot:      %s" % outs[start + i], flush=True)
                break
            time.sleep(0.2)
        else:
            sys.exit("no reply within 20 s")
    req = urllib.request.Request("%s/api/conversation/%s/status" % (a.url, urllib.parse.quote(a.phone)), headers=hdr)
    st = json.loads(urllib.request.urlopen(req, timeout=5).read())
    print("\nconversation: stage %s, quality %s" % (st["stage"], (st.get("quality") or {}).get("q")))
    for k, v in st["fields"].items():
        print("  %-17s %s" % (k, v))
    if st.get("lead_id"):
        print("Odoo lead: crm.lead %d" % st["lead_id"])
    elif st.get("lead_pending"):
        print("Odoo lead: write pending (Odoo unreachable; retried in the background)")
    else:
        print("Odoo lead: Odoo is not configured (set ODOO_URL, ODOO_DB, ODOO_USERNAME, ODOO_PASSWORD)")


if __name__ == "__main__":
    main()
