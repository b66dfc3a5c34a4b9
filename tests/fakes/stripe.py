#!/usr/bin/env python3
"""A Stripe API double for crmbridge's tests: POST /v1/checkout/sessions as Stripe documents it.

Form-encoded body with bracketed keys (line_items[0][price], line_items[0][quantity], mode, success_url,
client_reference_id, metadata[...]); Authorization: Bearer sk_test_… (or Basic with the key as user).
Answers 200 with a checkout.session object (id cs_test_…, url https://checkout.stripe.com/c/pay/…), or
Stripe's error object {"error": {"type", "code", "message", "param"}}: 401 for a bad key, 400
parameter_missing / resource_missing (an unknown price). Idempotency-Key: the same key with the same
parameters answers the first response again (header Idempotent-Replayed: true); with other parameters 400
idempotency_error.

Knobs: POST /_control {"prices": ["price_…"], "fail": N (answer the next N with 500 api_error),
"latency_ms": N, "reset": true}; GET /_log lists the requests. Prints "PORT <n>" once listening.
"""

import argparse
import base64
import json
import secrets
import threading
import time
import urllib.parse
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

STATE = {"prices": {"price_1TestDeposit"}, "fail": 0, "latency_ms": 0, "log": [], "idem": {}}
LOCK = threading.Lock()
ARGS = None


def err(status, etype, message, code=None, param=None):
    e = {"type": etype, "message": message}
    if code:
        e["code"] = code
        e["doc_url"] = "https://stripe.com/docs/error-codes/" + code.replace("_", "-")
    if param:
        e["param"] = param
    return status, {"error": e}


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True

    def log_message(self, *a):
        pass

    def reply(self, status, obj, headers=None):
        data = json.dumps(obj).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.send_header("Request-Id", "req_" + secrets.token_hex(7))
        for k, v in (headers or {}).items():
            self.send_header(k, v)
        self.end_headers()
        self.wfile.write(data)

    def do_GET(self):
        if self.path == "/_log":
            with LOCK:
                return self.reply(200, STATE["log"])
        self.reply(*err(404, "invalid_request_error", "Unrecognized request URL (GET: %s)." % self.path))

    def authorized(self):
        auth = self.headers.get("Authorization", "")
        if auth.startswith("Bearer "):
            return auth[7:] == ARGS.key
        if auth.startswith("Basic "):
            try:
                return base64.b64decode(auth[6:]).decode().split(":")[0] == ARGS.key
            except ValueError:
                return False
        return False

    def do_POST(self):
        raw = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        if self.path == "/_control":
            ctl = json.loads(raw or b"{}")
            with LOCK:
                if ctl.get("reset"):
                    STATE.update(prices={"price_1TestDeposit"}, fail=0, latency_ms=0, log=[], idem={})
                if "prices" in ctl:
                    STATE["prices"] = set(ctl["prices"])
                for k in ("fail", "latency_ms"):
                    if k in ctl:
                        STATE[k] = ctl[k]
            return self.reply(200, {"ok": True})
        if self.path != "/v1/checkout/sessions":
            return self.reply(*err(404, "invalid_request_error", "Unrecognized request URL (POST: %s)." % self.path))
        params = dict(urllib.parse.parse_qsl(raw.decode(), keep_blank_values=True))
        idem = self.headers.get("Idempotency-Key")
        entry = {"time": time.time(), "params": params, "idempotency_key": idem, "answer": None}
        with LOCK:
            STATE["log"].append(entry)
            latency = STATE["latency_ms"]
            failing = STATE["fail"] > 0
            if failing:
                STATE["fail"] -= 1
            prices = set(STATE["prices"])
            first = STATE["idem"].get(idem) if idem else None
        if latency:
            time.sleep(latency / 1000.0)
        if not self.authorized():
            entry["answer"] = 401
            return self.reply(*err(401, "invalid_request_error", "Invalid API Key provided: %s" %
                                   (self.headers.get("Authorization", "")[7:15] + "****")))
        if first is not None:
            if first["params"] != params:
                entry["answer"] = 400
                return self.reply(*err(400, "idempotency_error", "Keys for idempotent requests can only be used "
                                       "with the same parameters they were first used with."))
            entry["answer"] = "replayed"
            return self.reply(first["status"], first["body"], {"Idempotent-Replayed": "true"})
        if failing:
            entry["answer"] = 500
            return self.reply(*err(500, "api_error", "An unknown error occurred"))
        if params.get("mode") not in ("payment", "subscription", "setup"):
            status, body = err(400, "invalid_request_error", "Missing required param: mode.", "parameter_missing",
                               "mode")
        elif not params.get("success_url"):
            status, body = err(400, "invalid_request_error", "Missing required param: success_url.",
                               "parameter_missing", "success_url")
        elif params.get("line_items[0][price]") not in prices:
            status, body = err(400, "invalid_request_error",
                               "No such price: '%s'" % params.get("line_items[0][price]"), "resource_missing",
                               "line_items[0][price]")
        else:
            cs = "cs_test_" + secrets.token_hex(24)
            status, body = 200, {
                "id": cs, "object": "checkout.session", "mode": params["mode"], "status": "open",
                "payment_status": "unpaid", "client_reference_id": params.get("client_reference_id"),
                "success_url": params["success_url"], "livemode": False, "created": int(time.time()),
                "expires_at": int(time.time()) + 86400,
                "metadata": {k[9:-1]: v for k, v in params.items() if k.startswith("metadata[")},
                "url": "https://checkout.stripe.com/c/pay/" + cs}
        entry["answer"] = status
        if idem:
            with LOCK:
                STATE["idem"][idem] = {"params": params, "status": status, "body": body}
        self.reply(status, body)


def main():
    global ARGS
    p = argparse.ArgumentParser()
    p.add_argument("--port", type=int, default=0)
    p.add_argument("--key", default="sk_test_crmbridge")
    ARGS = p.parse_args()
    srv = ThreadingHTTPServer(("127.0.0.1", ARGS.port), Handler)
    srv.daemon_threads = True
    print("PORT %d" % srv.server_address[1], flush=True)
    srv.serve_forever()


if __name__ == "__main__":
    main()
