#!/usr/bin/env python3
"""A Gemini generateContent double for crmbridge's tests (docs/PROTOCOLS.md section 4).

POST /v1beta/models/{model}:generateContent with header x-goog-api-key.
A wrong key answers 400 INVALID_ARGUMENT ("API key not valid"), a retired
model 404 NOT_FOUND, a body without contents 400, and 400 what the real API
refuses (refused()): contents that do not begin with a user turn, alternate
and end with one; a media type Gemini does not list; a thinkingConfig the
model's family does not take (thinkingLevel on 2.5, any on 2.0, both
members, a budget of 0 on 2.5 Pro). Otherwise 200 with
candidates[0].content.parts[].text = the analysis JSON, finishReason STOP,
and usageMetadata.

The analysis returned is the one set with "answer" (a JSON object), the toy
model's reading of the conversation (tests/fakes/toymodel.py) with "toy" or
--toy, or by default a plain one: cold, other, no fields, ask_about_interest.
Media parts (inlineData) are read through the toy model's registry ("media").

Knobs, POST /_control JSON:
  {"reset": true, "toy": true, "media": {"<sha256>": "words"}, "latency_ms": N, "jitter_ms": N (latency ± uniform), "keep_log": false, "answer": {...},
   "script": ["429", "429-perday", "503", "400", "404", "max_tokens", "blocked", "malformed",
              "hallucinated_email", "slow", "thought_first", "ok"]}
  script entries answer the next requests in turn; "slow" sleeps "slow_ms" (default 5000).
GET /_log: every request received (path, headers that matter, the JSON body).
GET /_stats: requests, in_flight and max_in_flight (calls being answered at once).
Prints "PORT <n>" once listening.
"""

import argparse
import base64
import json
import os
import random
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import toymodel  # noqa: E402

STATE = {"toy": False, "latency_ms": 0, "jitter_ms": 0, "script": [], "answer": None, "slow_ms": 5000, "log": [], "keep_log": True,
         "in_flight": 0, "max_in_flight": 0, "requests": 0}
LOCK = threading.Lock()
ARGS = None
RETIRED = {"gemini-2.5-flash", "gemini-2.5-flash-lite", "gemini-1.5-flash", "gemini-pro"}
DEFAULT = {"quality": "cold", "confidence": 0.6, "intent": "other", "reason": "greeting", "sentiment": 0.0,
           "fields": {k: None for k in ["name", "email", "phone", "city", "product_interest", "budget_range",
                                        "urgency", "specific_need"]},
           "missing": ["name", "product_interest"], "action": "ask_about_interest",
           "reply": "¡Hola! ¿En qué puedo ayudarte hoy?", "language": "es", "reasoning": "A greeting."}
USAGE = {"promptTokenCount": 412, "candidatesTokenCount": 96, "thoughtsTokenCount": 0, "totalTokenCount": 508}


def err(code, status, message, details=None):
    return code, {"error": {"code": code, "message": message, "status": status, "details": details or []}}


def ok_body(text, finish="STOP", thought=None):
    parts = ([{"text": thought, "thought": True}] if thought else []) + [{"text": text}]
    return 200, {"candidates": [{"content": {"parts": parts, "role": "model"}, "finishReason": finish, "index": 0}],
                 "usageMetadata": USAGE, "modelVersion": ARGS.model}


# Gemini's documented media types (image and audio understanding); anything else is refused with 400.
MEDIA_TYPES = {"image/png", "image/jpeg", "image/webp", "image/heic", "image/heif",
               "audio/wav", "audio/mp3", "audio/aiff", "audio/aac", "audio/ogg", "audio/flac"}


def family(model):
    """(major, minor, pro) of a gemini-X.Y-… model name, or None for another family."""
    name = model.split("/")[-1]
    if not name.startswith("gemini-"):
        return None
    ver = name[7:].split("-", 1)[0]
    try:
        major, _, minor = ver.partition(".")
        return int(major), int(minor or 0), "-pro" in name
    except ValueError:
        return None


def refused(model, body):
    """Why Gemini answers this request 400 (docs/PROTOCOLS.md, the official docs and python-genai), or None.
    The texts follow the API's own where they are known; the status is what the client acts on."""
    contents = body.get("contents") or []
    roles = [c.get("role") for c in contents]
    if any(r not in ("user", "model") for r in roles):
        return "* GenerateContentRequest.contents: role must be 'user' or 'model'"
    if roles and roles[0] != "user":
        return "Please ensure that multiturn requests alternate between user and model."
    if any(a == b for a, b in zip(roles, roles[1:])):
        return "Please ensure that multiturn requests alternate between user and model."
    if roles and roles[-1] != "user":
        # Gemini 3.5 Flash-Lite (the default) refuses a conversation that ends on the model's turn.
        return "Please ensure that the last content has the role 'user' (the model cannot continue its own turn)."
    for c in contents:
        for part in c.get("parts") or []:
            mt = (part.get("inlineData") or {}).get("mimeType")
            if mt is not None and mt not in MEDIA_TYPES:
                return "Unsupported MIME type: %s" % mt
    tc = (body.get("generationConfig") or {}).get("thinkingConfig")
    if tc is not None:
        fam = family(model)
        if "thinkingLevel" in tc and "thinkingBudget" in tc:
            return "You can only set one of thinking budget and thinking level."
        if fam is None or fam[0] < 2 or fam[:2] == (2, 0):
            return "Thinking is not supported for this model."
        if fam[:2] == (2, 5) and "thinkingLevel" in tc:
            return "Thinking level is not supported for this model."
        if fam[:2] == (2, 5) and fam[2] and tc.get("thinkingBudget") == 0:
            return "Budget 0 is invalid. This model only works in thinking mode."
        if fam[0] >= 3 and fam[2] and tc.get("thinkingLevel") in ("minimal", "medium"):
            return "Thinking level %s is not supported for this model." % tc.get("thinkingLevel")
    return None


def user_view(contents):
    """The customer's texts and what the last media part says (through the toy model's registry)."""
    texts, media_words = [], None
    for c in contents:
        if c.get("role") != "user":
            continue
        for p in c.get("parts") or []:
            if "text" in p:
                texts.append(p["text"])
            elif "inlineData" in p:
                media_words = toymodel.media_text(base64.b64decode(p["inlineData"].get("data", "")))
    return texts, media_words


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    # Headers and body go out as two writes: without TCP_NODELAY, Nagle and the client's delayed ACK add 40 ms.
    disable_nagle_algorithm = True

    def log_message(self, *a):
        pass

    def reply(self, status, obj):
        data = json.dumps(obj).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json; charset=UTF-8")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def do_GET(self):
        if self.path == "/_log":
            with LOCK:
                return self.reply(200, STATE["log"])
        if self.path == "/_stats":
            with LOCK:
                return self.reply(200, {k: STATE[k] for k in ("in_flight", "max_in_flight", "requests")})
        self.reply(*err(404, "NOT_FOUND", "Not found"))

    def do_POST(self):
        n = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(n)
        if self.path == "/_control":
            ctl = json.loads(raw or b"{}")
            with LOCK:
                if ctl.get("reset"):
                    STATE.update(latency_ms=0, script=[], answer=None, slow_ms=5000, log=[], toy=ARGS.toy)
                for k in ("latency_ms", "jitter_ms", "script", "answer", "slow_ms", "keep_log", "toy"):
                    if k in ctl:
                        STATE[k] = ctl[k]
                toymodel.MEDIA.update(ctl.get("media") or {})
            return self.reply(200, {"ok": True})
        try:
            body = json.loads(raw)
        except ValueError:
            body = None
        with LOCK:
            if STATE["keep_log"]:
                STATE["log"].append({"path": self.path, "api_key": self.headers.get("x-goog-api-key"), "body": body})
            step = STATE["script"].pop(0) if STATE["script"] else "ok"
            latency, answer, slow = STATE["latency_ms"], STATE["answer"] or DEFAULT, STATE["slow_ms"]
            if STATE["toy"] and isinstance(body, dict) and not STATE["answer"]:
                answer = toymodel.analyse(*user_view(body.get("contents") or []))
            jitter = STATE["jitter_ms"]
            STATE["requests"] += 1
            STATE["in_flight"] += 1
            STATE["max_in_flight"] = max(STATE["max_in_flight"], STATE["in_flight"])
        try:
            if latency:
                time.sleep(max(0, latency + random.uniform(-jitter, jitter)) / 1000.0)
            return self.answer(step, body, answer, slow)
        finally:
            with LOCK:
                STATE["in_flight"] -= 1

    def answer(self, step, body, answer, slow):
        model = self.path.split("/models/", 1)[-1].split(":", 1)[0]
        if self.headers.get("x-goog-api-key") != ARGS.api_key:
            return self.reply(*err(400, "INVALID_ARGUMENT", "API key not valid. Please pass a valid API key.",
                                   [{"@type": "type.googleapis.com/google.rpc.ErrorInfo", "reason": "API_KEY_INVALID"}]))
        if model in RETIRED or step == "404":
            return self.reply(*err(404, "NOT_FOUND", "models/%s is not found for API version v1beta" % model))
        if not body or not body.get("contents"):
            return self.reply(*err(400, "INVALID_ARGUMENT", "* GenerateContentRequest.contents: contents is not specified"))
        why = refused(model, body)
        if why is not None:
            return self.reply(*err(400, "INVALID_ARGUMENT", why))
        if step == "400":
            return self.reply(*err(400, "INVALID_ARGUMENT", "Invalid JSON payload received."))
        if step in ("429", "429-perday"):
            quota = "GenerateRequestsPerDayPerProjectPerModel-FreeTier" if step == "429-perday" else \
                "GenerateRequestsPerMinutePerProjectPerModel-FreeTier"
            return self.reply(*err(429, "RESOURCE_EXHAUSTED", "You exceeded your current quota.", [
                {"@type": "type.googleapis.com/google.rpc.QuotaFailure",
                 "violations": [{"quotaMetric": "generativelanguage.googleapis.com/generate_content_free_tier_requests",
                                 "quotaId": quota}]},
                {"@type": "type.googleapis.com/google.rpc.RetryInfo", "retryDelay": "1s"}]))
        if step == "503":
            return self.reply(*err(503, "UNAVAILABLE", "The model is overloaded. Please try again later."))
        if step == "slow":
            time.sleep(slow / 1000.0)
        if step == "blocked":
            return self.reply(200, {"promptFeedback": {"blockReason": "SAFETY"}, "usageMetadata": USAGE})
        text = json.dumps(answer, ensure_ascii=False)
        if step == "max_tokens":
            return self.reply(*ok_body(text[: len(text) // 2], "MAX_TOKENS"))
        if step == "malformed":
            return self.reply(*ok_body("Sure! Here is the analysis: quality=hot"))
        if step == "hallucinated_email":
            a = json.loads(text)
            a["fields"]["email"] = "invented.person@example.com"
            return self.reply(*ok_body(json.dumps(a, ensure_ascii=False)))
        if step == "thought_first":
            return self.reply(*ok_body(text, thought="Thinking about the lead..."))
        return self.reply(*ok_body(text))


def main():
    global ARGS
    p = argparse.ArgumentParser()
    p.add_argument("--port", type=int, default=0)
    p.add_argument("--api-key", default="test-gemini-key")
    p.add_argument("--model", default="gemini-3.5-flash-lite")
    p.add_argument("--toy", action="store_true", help="answer with the toy model by default")
    ARGS = p.parse_args()
    STATE["toy"] = ARGS.toy
    ThreadingHTTPServer.request_queue_size = 1024  # hundreds of calls at once in the benchmarks
    srv = ThreadingHTTPServer(("127.0.0.1", ARGS.port), Handler)
    srv.daemon_threads = True
    print("PORT %d" % srv.server_address[1], flush=True)
    srv.serve_forever()


if __name__ == "__main__":
    main()
