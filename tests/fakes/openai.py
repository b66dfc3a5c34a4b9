#!/usr/bin/env python3
"""An OpenAI-compatible chat/completions double for crmbridge's tests (docs/PROTOCOLS.md section 4, last point).

POST {prefix}/chat/completions (any prefix: /v1, /v1beta/openai) with Authorization: Bearer KEY.
As OpenAI answers: a wrong key 401 invalid_api_key; an unknown model 404 model_not_found; no messages 400;
input_audio to a model that is not an audio one (gpt-4o-mini takes text and images) 400; a 429 with Retry-After
and retry-after-ms; a
response_format json_schema that is not strict-valid (an object without additionalProperties false, or a
property missing from required) 400 with OpenAI's wording. Otherwise 200 with choices[0].message.content =
the analysis JSON, finish_reason "stop", and usage.

The analysis is the one set with "answer", the toy model's reading of the conversation with "toy" (or
--toy), or a plain default (cold, ask_about_interest).

Knobs, POST /_control JSON:
  {"reset": true, "latency_ms": N, "answer": {...}, "toy": true, "slow_ms": N,
   "media": {"<sha256 hex>": "what it says"},   (for the toy model)
   "script": ["429", "429-quota", "500", "503", "gemini-429", "gemini-400", "length", "content_filter",
              "refusal", "malformed", "hallucinated_email", "parts", "slow", "ok"]}
  "gemini-…" answer errors wrapped in an array as Gemini's compatible endpoint does.
GET /_log: every request received (path, authorization, the JSON body). Prints "PORT <n>" once listening.
"""

import argparse
import base64
import json
import os
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import toymodel  # noqa: E402

STATE = {"latency_ms": 0, "script": [], "answer": None, "toy": False, "slow_ms": 5000, "log": [], "requests": 0}
LOCK = threading.Lock()
ARGS = None
DEFAULT = {"quality": "cold", "confidence": 0.6, "intent": "other", "reason": "greeting", "sentiment": 0.0,
           "fields": {k: None for k in toymodel.FIELDS}, "missing": ["name", "product_interest"],
           "action": "ask_about_interest", "reply": "¡Hola! ¿En qué puedo ayudarte hoy?", "language": "es",
           "reasoning": "A greeting.", "transcript": None}
USAGE = {"prompt_tokens": 402, "completion_tokens": 88, "total_tokens": 490,
         "completion_tokens_details": {"reasoning_tokens": 0}}


def oa_err(status, message, typ, code, param=None):
    return status, {"error": {"message": message, "type": typ, "param": param, "code": code}}


def strict_problem(schema, where="()"):
    """What OpenAI's strict mode would refuse in schema, or None."""
    if not isinstance(schema, dict):
        return "In context=%s, schema must be an object." % where
    types = schema.get("type")
    if types == "object" or (isinstance(types, list) and "object" in types):
        props = schema.get("properties", {})
        if schema.get("additionalProperties") is not False:
            return ("In context=%s, 'additionalProperties' is required to be supplied and to be false." % where)
        missing = [k for k in props if k not in (schema.get("required") or [])]
        if missing:
            return ("In context=%s, 'required' is required to be supplied and to be an array including every key "
                    "in properties. Missing '%s'." % (where, missing[0]))
        for k, v in props.items():
            p = strict_problem(v, "('properties', '%s')" % k)
            if p:
                return p
    if "items" in schema:
        return strict_problem(schema["items"], where + ", 'items'")
    return None


def user_view(messages):
    """The customer's texts and the words of the last message's media (through the toy registry)."""
    texts, media_words = [], None
    for m in messages:
        if m.get("role") != "user":
            continue
        c = m.get("content")
        if isinstance(c, str):
            texts.append(c)
            continue
        for part in c or []:
            if part.get("type") == "text":
                texts.append(part.get("text", ""))
            elif part.get("type") == "image_url":
                url = part.get("image_url", {}).get("url", "")
                if url.startswith("data:") and "," in url:
                    media_words = toymodel.media_text(base64.b64decode(url.split(",", 1)[1]))
            elif part.get("type") == "input_audio":
                media_words = toymodel.media_text(base64.b64decode(part.get("input_audio", {}).get("data", "")))
    return texts, media_words


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True

    def log_message(self, *a):
        pass

    def reply(self, status, obj, headers=None):
        data = json.dumps(obj).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        for k, v in (headers or {}).items():
            self.send_header(k, v)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def do_GET(self):
        if self.path == "/_log":
            with LOCK:
                return self.reply(200, STATE["log"])
        self.reply(*oa_err(404, "Unknown request URL: GET %s." % self.path, "invalid_request_error",
                           "unknown_url"))

    def do_POST(self):
        n = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(n)
        if self.path == "/_control":
            ctl = json.loads(raw or b"{}")
            with LOCK:
                if ctl.get("reset"):
                    STATE.update(latency_ms=0, script=[], answer=None, toy=ARGS.toy, slow_ms=5000, log=[])
                for k in ("latency_ms", "script", "answer", "toy", "slow_ms"):
                    if k in ctl:
                        STATE[k] = ctl[k]
                toymodel.MEDIA.update(ctl.get("media") or {})
            return self.reply(200, {"ok": True})
        try:
            body = json.loads(raw)
        except ValueError:
            body = None
        with LOCK:
            STATE["log"].append({"path": self.path, "authorization": self.headers.get("Authorization"),
                                 "body": body})
            step = STATE["script"].pop(0) if STATE["script"] else "ok"
            latency, answer, toy, slow = STATE["latency_ms"], STATE["answer"], STATE["toy"], STATE["slow_ms"]
            STATE["requests"] += 1
        if latency:
            time.sleep(latency / 1000.0)
        return self.answer(step, body, answer, toy, slow)

    def answer(self, step, body, answer, toy, slow):
        if not self.path.endswith("/chat/completions"):
            return self.reply(*oa_err(404, "Unknown request URL: POST %s." % self.path, "invalid_request_error",
                                      "unknown_url"))
        if self.headers.get("Authorization") != "Bearer " + ARGS.api_key:
            return self.reply(*oa_err(401, "Incorrect API key provided. You can find your API key at "
                                      "https://platform.openai.com/account/api-keys.", "invalid_request_error",
                                      "invalid_api_key"))
        if not isinstance(body, dict) or not body.get("messages"):
            return self.reply(*oa_err(400, "Missing required parameter: 'messages'.", "invalid_request_error",
                                      "missing_required_parameter", "messages"))
        model = body.get("model")
        if model not in ARGS.model:
            return self.reply(*oa_err(404, "The model `%s` does not exist or you do not have access to it." % model,
                                      "invalid_request_error", "model_not_found"))
        if "audio" not in model and any(isinstance(m.get("content"), list) and
                                        any(isinstance(p, dict) and p.get("type") == "input_audio" for p in m["content"])
                                        for m in body["messages"] if isinstance(m, dict)):
            # gpt-4o-mini and the other text models take text and images: input_audio needs an audio model.
            return self.reply(*oa_err(400, "Invalid content type. input_audio is only supported by audio models "
                                      "(e.g. gpt-4o-audio-preview); `%s` does not accept audio input." % model,
                                      "invalid_request_error", "invalid_value", "messages"))
        rf = body.get("response_format") or {}
        if rf.get("type") == "json_schema":
            js = rf.get("json_schema") or {}
            prob = strict_problem(js.get("schema")) if js.get("strict") else None
            if prob:
                return self.reply(*oa_err(400, "Invalid schema for response_format '%s': %s" % (js.get("name"), prob),
                                          "invalid_request_error", "invalid_json_schema", "response_format"))
        if step == "429":
            return self.reply(*oa_err(429, "Rate limit reached for requests per min (RPM). Please try again in 1s.",
                                      "requests", "rate_limit_exceeded"), {"Retry-After": "1", "retry-after-ms": "1000"})
        if step == "429-quota":
            return self.reply(*oa_err(429, "You exceeded your current quota, please check your plan and billing "
                                      "details.", "insufficient_quota", "insufficient_quota"))
        if step in ("500", "503"):
            return self.reply(*oa_err(int(step), "The server had an error while processing your request. Sorry "
                                      "about that!", "server_error", None))
        if step == "gemini-429":
            return self.reply(429, [{"error": {"code": 429, "message": "Resource has been exhausted (e.g. check "
                                               "quota).", "status": "RESOURCE_EXHAUSTED"}}])
        if step == "gemini-400":
            return self.reply(400, [{"error": {"code": 400, "message": "API key not valid. Please pass a valid API "
                                               "key.", "status": "INVALID_ARGUMENT"}}])
        if step == "slow":
            time.sleep(slow / 1000.0)
        if toy:
            texts, media_words = user_view(body["messages"])
            answer = toymodel.analyse(texts, media_words)
        text = json.dumps(answer or DEFAULT, ensure_ascii=False)
        finish, content, refusal = "stop", text, None
        if step == "length":
            finish, content = "length", text[: len(text) // 2]
        elif step == "content_filter":
            finish, content = "content_filter", None
        elif step == "refusal":
            content, refusal = None, "I'm sorry, I can't help with that."
        elif step == "malformed":
            content = "Sure! Here is the analysis: quality=hot"
        elif step == "hallucinated_email":
            a = json.loads(text)
            a["fields"]["email"] = "invented.person@example.com"
            content = json.dumps(a, ensure_ascii=False)
        msg = {"role": "assistant", "content": content, "refusal": refusal}
        if step == "parts":  # some servers answer content as an array of parts
            msg["content"] = [{"type": "text", "text": text[:20]}, {"type": "text", "text": text[20:]}]
        return self.reply(200, {"id": "chatcmpl-%d" % STATE["requests"], "object": "chat.completion",
                                "created": int(time.time()), "model": model,
                                "choices": [{"index": 0, "message": msg, "logprobs": None, "finish_reason": finish}],
                                "usage": USAGE})


def main():
    global ARGS
    p = argparse.ArgumentParser()
    p.add_argument("--port", type=int, default=0)
    p.add_argument("--api-key", default="test-openai-key")
    p.add_argument("--model", action="append", default=None, help="models served (default gpt-4o-mini)")
    p.add_argument("--toy", action="store_true", help="answer with the toy model by default")
    ARGS = p.parse_args()
    ARGS.model = ARGS.model or ["gpt-4o-mini"]
    STATE["toy"] = ARGS.toy
    ThreadingHTTPServer.request_queue_size = 1024
    srv = ThreadingHTTPServer(("127.0.0.1", ARGS.port), Handler)
    srv.daemon_threads = True
    print("PORT %d" % srv.server_address[1], flush=True)
    srv.serve_forever()


if __name__ == "__main__":
    main()
