#!/usr/bin/env python3
"""The reverse-proxy examples shipped in etc/ (docs/DEPLOY.md, section 6) in front of a real crmbridged, with
Debian's real nginx and Caddy: a webhook signed as Twilio signs it (over https://bot.example.com/...) passes
through TLS to the daemon and is accepted, path, query and body unchanged; an unsigned one is refused by the
daemon; the admin API and /metrics are not reachable through the proxy; /health is; plain HTTP redirects to
HTTPS (nginx). Only the ports, the certificate (self-signed here, certbot's or Caddy's own in production) and
the upstream's port are changed from the shipped files."""
import os
import re
import shutil
import socket
import ssl
import subprocess
import sys
import time
import urllib.parse

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import (Daemon, Redis, done, form, free_port, is_eq, ok, sign, wait_for,  # noqa: E402
                     workdir, write_config)

SRC = os.environ.get("TOP_SRCDIR") or "."
NGINX = shutil.which("nginx") or "/usr/sbin/nginx"
CADDY = shutil.which("caddy")
OPENSSL = shutil.which("openssl")
if not os.path.exists(NGINX) or not CADDY or not OPENSSL:
    ok(False, "nginx, caddy and openssl are installed (./dev.sh test installs them)")
    done()

HOST = "bot.example.com"
TOKEN = "proxy-test-token-5a1c9e0f3b7d2468"
SID = "AC" + "1" * 32
wd = workdir()
redis = Redis(wd)
redis.start()
conf = os.path.join(wd, "crmbridge.conf")
write_config(conf, """[server]
listen = 127.0.0.1:0
public_url = https://%s
state_dir = %s
[redis]
url = redis://127.0.0.1:%d/0
[twilio]
account_sid = %s
auth_token = %s
whatsapp_from = whatsapp:+14155238886
api_base = http://127.0.0.1:1
status_callback = no
""" % (HOST, wd, redis.port, SID, TOKEN))
d = Daemon(wd, conf)
ready = d.wait_notify("READY=1", 15)
ok(ready is not None, "crmbridged ready")
dport = int(re.search(r"listening on 127\.0\.0\.1:(\d+)", d.logtext()).group(1))

# A self-signed certificate for the host name, in place of certbot's.
cert, key = os.path.join(wd, "fullchain.pem"), os.path.join(wd, "privkey.pem")
subprocess.run([OPENSSL, "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2", "-subj", "/CN=" + HOST,
                "-addext", "subjectAltName=DNS:" + HOST, "-keyout", key, "-out", cert],
               check=True, capture_output=True)
ctx = ssl.create_default_context(cafile=cert)


def https(port, method, path, body=None, headers=None):
    """A request to https://HOST:port/path, connecting to 127.0.0.1, the certificate checked against HOST."""
    import http.client
    c = http.client.HTTPSConnection("127.0.0.1", port, context=ctx, timeout=10)
    c.sock = ctx.wrap_socket(socket.create_connection(("127.0.0.1", port), timeout=10), server_hostname=HOST)
    c.putrequest(method, path, skip_host=True)
    c.putheader("Host", HOST)
    for k, v in (headers or {}).items():
        c.putheader(k, v)
    data = body.encode() if body is not None else None
    if data is not None:
        c.putheader("Content-Length", str(len(data)))
    c.endheaders(data)
    r = c.getresponse()
    out = (r.status, dict(r.getheaders()), r.read())
    c.close()
    return out


n = [0]


def webhook(port, signed=True, query="", token=TOKEN):
    n[0] += 1
    params = [("MessageSid", "SM%032x" % (0xabc000 + n[0] + port)), ("AccountSid", SID),
              ("From", "whatsapp:+573001119%03d" % n[0]), ("To", "whatsapp:+14155238886"),
              ("Body", "Hola, busco un sofá & una mesa = 2 cosas"), ("ProfileName", "Ána"), ("NumMedia", "0")]
    path = "/api/webhook/whatsapp" + query
    h = {"Content-Type": "application/x-www-form-urlencoded"}
    if signed:
        h["X-Twilio-Signature"] = sign(token, "https://%s%s" % (HOST, path), params)
    return https(port, "POST", path, form(params), h)


def check_proxy(name, port):
    st, h, body = webhook(port)
    ok(st == 200 and b"<Response" in body, "%s: a webhook signed over https://%s/... is accepted through the proxy"
       % (name, HOST), (st, body[:200]))
    st, h, body = webhook(port, query="?shop=norte&x=1%202")
    is_eq(st, 200, "%s: the query string reaches the daemon unchanged (it is signed too)" % name)
    st, h, body = webhook(port, signed=False)
    is_eq(st, 400, "%s: an unsigned webhook is refused by the daemon behind it (400: missing signature)" % name)
    st, h, body = webhook(port, token="not-the-account-token-000000000")
    is_eq(st, 403, "%s: one signed with another token is refused (403)" % name)
    st, h, body = https(port, "GET", "/health")
    ok(st == 200 and b'"status"' in body, "%s: /health answers through the proxy" % name, (st, body[:100]))
    for path in ("/system/status", "/metrics", "/api/leads", "/api/conversation/%2B573001119001/status"):
        st, h, body = https(port, "GET", path, headers={"Authorization": "Bearer " + (d.generated_token() or "")})
        is_eq(st, 404, "%s: %s is not exposed, even with the admin token" % (name, path))
    st, h, body = https(port, "GET", "/api/webhook/whatsapp")
    ok(st in (403, 404, 405), "%s: a GET of the webhook does not reach the daemon's routes as a POST" % name, st)


# ---- nginx, from etc/nginx/crmbridge-nginx.conf ----
site = open(os.path.join(SRC, "etc/nginx/crmbridge-nginx.conf")).read()
hport, sport = free_port(), free_port()
site = site.replace("server 127.0.0.1:8080;", "server 127.0.0.1:%d;" % dport)
site = re.sub(r"^\s*listen \[::\]:\d+.*\n", "", site, flags=re.M)  # the test host may have no IPv6
site = site.replace("listen 80;", "listen 127.0.0.1:%d;" % hport)
site = site.replace("listen 443 ssl http2;", "listen 127.0.0.1:%d ssl http2;" % sport)
site = site.replace("/etc/letsencrypt/live/bot.example.com/fullchain.pem", cert)
site = site.replace("/etc/letsencrypt/live/bot.example.com/privkey.pem", key)
ok("127.0.0.1:%d" % dport in site and cert in site and "listen 127.0.0.1:%d ssl" % sport in site,
   "nginx: the example adapted by ports and certificate only")
os.makedirs(os.path.join(wd, "nginx-tmp"), exist_ok=True)
with open(os.path.join(wd, "crmbridge-site.conf"), "w") as f:
    f.write(site)
with open(os.path.join(wd, "nginx.conf"), "w") as f:
    f.write("""daemon off;
master_process off;
pid %(wd)s/nginx.pid;
error_log %(wd)s/nginx-error.log;
events {}
http {
	access_log off;
	client_body_temp_path %(wd)s/nginx-tmp/body;
	proxy_temp_path %(wd)s/nginx-tmp/proxy;
	fastcgi_temp_path %(wd)s/nginx-tmp/fastcgi;
	uwsgi_temp_path %(wd)s/nginx-tmp/uwsgi;
	scgi_temp_path %(wd)s/nginx-tmp/scgi;
	include %(wd)s/crmbridge-site.conf;
}
""" % {"wd": wd})
r = subprocess.run([NGINX, "-t", "-p", wd, "-c", os.path.join(wd, "nginx.conf")], capture_output=True, text=True)
ok(r.returncode == 0, "nginx -t accepts the example", r.stderr)
ngx = subprocess.Popen([NGINX, "-p", wd, "-c", os.path.join(wd, "nginx.conf")], stdout=subprocess.DEVNULL,
                       stderr=subprocess.DEVNULL)


def listening(port):
    try:
        socket.create_connection(("127.0.0.1", port), timeout=1).close()
        return True
    except OSError:
        return False


if ok(wait_for(lambda: listening(sport), 10), "nginx listens"):
    check_proxy("nginx", sport)
    c = socket.create_connection(("127.0.0.1", hport), timeout=5)
    c.sendall(b"POST /api/webhook/whatsapp HTTP/1.1\r\nHost: %s\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
              % HOST.encode())
    head = c.makefile("rb").read().decode("latin-1")
    c.close()
    ok(head.startswith("HTTP/1.1 301") and "Location: https://%s/api/webhook/whatsapp" % HOST in head,
       "nginx: plain HTTP is redirected to HTTPS", head[:200])
ngx.terminate()
ngx.wait(10)

# ---- Caddy, from etc/caddy/Caddyfile ----
cf = open(os.path.join(SRC, "etc/caddy/Caddyfile")).read()
cport = free_port()
cf = cf.replace("reverse_proxy 127.0.0.1:8080", "reverse_proxy 127.0.0.1:%d" % dport)
cf, nsite = re.subn(r"^bot\.example\.com \{$", "%s:%d {\n\ttls %s %s" % (HOST, cport, cert, key), cf, flags=re.M)
ok(nsite == 1 and cf.count("127.0.0.1:%d" % dport) == 2, "Caddy: the example adapted by port and certificate only")
cf = "{\n\tadmin off\n\tauto_https disable_redirects\n\tstorage file_system %s/caddy-data\n}\n\n" % wd + cf
with open(os.path.join(wd, "Caddyfile"), "w") as f:
    f.write(cf)
env = dict(os.environ, HOME=wd, XDG_DATA_HOME=wd, XDG_CONFIG_HOME=wd)
r = subprocess.run([CADDY, "validate", "--config", os.path.join(wd, "Caddyfile"), "--adapter", "caddyfile"],
                   capture_output=True, text=True, env=env)
ok(r.returncode == 0, "caddy validate accepts the example", r.stderr[-800:])
cad = subprocess.Popen([CADDY, "run", "--config", os.path.join(wd, "Caddyfile"), "--adapter", "caddyfile"],
                       stdout=subprocess.DEVNULL, stderr=open(os.path.join(wd, "caddy.log"), "w"), env=env)
if ok(wait_for(lambda: listening(cport), 15), "Caddy listens", open(os.path.join(wd, "caddy.log")).read()[-800:]):
    time.sleep(0.3)
    check_proxy("Caddy", cport)
cad.terminate()
cad.wait(10)

metrics = d.request("GET", "/metrics")[2].decode()
m = re.search(r'crmbridge_webhook_requests_total\{result="accepted"\} (\d+)', metrics)
ok(m and int(m.group(1)) == 4, "the daemon stored exactly the four signed webhooks (two a proxy)",
   m and m.group(0))
d.signal(15)
is_eq(d.wait(20), 0, "crmbridged stops cleanly")
d.kill()
redis.stop()
done()
