"""The admin dashboard against the real daemon, a real redis-server and Debian's headless Chromium (driven over
W3C WebDriver by chromedriver, tests/integration/webdriver.py).

Over HTTP: the page and its files carry a strict Content-Security-Policy and show no data without a session;
crmbridgectl dashboard prints a one-time link; the link sets an HttpOnly, SameSite=Strict cookie (Secure when the
browser comes through an https public_url) and works once; an expired link (dashboard.link_ttl) and a malformed one
fail; Redis keeps only hashes of the ids; a change needs the session's CSRF token and the page's own origin, and is
audited in the log; sessions survive a restart and work on a second instance; logging out ends the session; the
token form; dashboard.enabled = no; Chart.js missing.

In the browser: nothing shown without a session; a replayed link refused; logged in through the link; the charts
drawn by Chart.js from the test's conversations; the conversations listed (phone masked, name, stage, quality,
waiting for a person) and searched; one conversation's history; pausing and erasing (with a confirmation naming
the phone) through the page, seen through the API; logging in with the token form; the page at a phone's width
without sideways scrolling; no request to any other host than the daemon's; no console error (a CSP violation is
one). Screenshots go to the work directory, or to $DASHBOARD_SCREENSHOTS (docs/screenshot.sh).
"""

import atexit
import hashlib
import http.client
import json
import os
import re
import shutil
import sys
import time
import urllib.parse

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import (Daemon, Redis, control, done, free_port, get, is_eq, ok, post_whatsapp, skip_all, start_fake,  # noqa
                     wait_for, workdir, write_config)
import webdriver  # noqa

if not os.path.exists(os.environ.get("REDIS_SERVER") or "/usr/bin/redis-server"):
    skip_all("redis-server not installed")

CTL = os.path.join(os.environ.get("TOP_BUILDDIR", "."), "crmbridgectl")
SID = "AC" + "4" * 32
TOKEN = "twilio-dash-token-0123"
ADMIN = "dashboard-admin-token-0123456789"
ANA, LUIS, EVA, PEDRO, ROSA = "+573001112233", "+573009998877", "+34612345678", "+573005550000", "+573007771111"
wd = workdir()
redis = Redis(wd)
redis.start()
atexit.register(lambda: redis.proc and redis.proc.poll() is None and redis.stop())
DAY0 = time.strftime("%Y-%m-%d", time.gmtime())  # the analytics' day (UTC): "today" below, unless a run crosses midnight
twilio, tport = start_fake("twilio.py", "--account-sid", SID, "--auth-token", TOKEN)
atexit.register(twilio.terminate)  # also when an assertion raises
daemons = []
atexit.register(lambda: [x.kill() for x in daemons if x.proc.poll() is None])


def start(path):
    x = Daemon(wd, path)
    daemons.append(x)
    return x

port, aport = free_port(), free_port()
PUBLIC = "http://127.0.0.1:%d" % port
ADMIN_URL = "http://127.0.0.1:%d" % aport


def config(name, server_extra="", extra="", listen=None, public=PUBLIC):
    path = os.path.join(wd, name)
    write_config(path, f"""[server]
listen = 127.0.0.1:{listen or port}
public_url = {public}
admin_token = {ADMIN}
{server_extra}
[redis]
url = redis://127.0.0.1:{redis.port}/0
[engine]
coalesce_window = 300ms
[twilio]
account_sid = {SID}
auth_token = {TOKEN}
whatsapp_from = whatsapp:+14155238886
api_base = http://127.0.0.1:{tport}
status_callback = no
{extra}
""")
    return path


conf = config("crmbridge.conf", "admin_listen = 127.0.0.1:%d" % aport)
d = start(conf)
ok(d.wait_notify("READY=1", 15), "the daemon is ready")
d.port = port

seq = [0]


def post(phone, body):
    seq[0] += 1
    return post_whatsapp(port, TOKEN, PUBLIC, phone, body, "SM%032x" % (0xDA5B0000 + seq[0]))


def replies(phone):
    return [e["form"]["Body"] for e in get(tport, "/_log")
            if e.get("answer") == 201 and e["form"]["To"] == "whatsapp:" + phone]


def converse(phone, lines):
    for line in lines:
        n = len(replies(phone))
        is_eq(post(phone, line), 200, "webhook accepted: " + line[:30])
        ok(wait_for(lambda: len(replies(phone)) > n, 20), "answered: " + line[:30])


def request(method, path, body=None, headers=None, p=None):
    c = http.client.HTTPConnection("127.0.0.1", p or aport, timeout=10)
    c.request(method, path, body=body, headers=headers or {})
    r = c.getresponse()
    data = r.read()
    c.close()
    return r.status, r.headers, data


def api(method, path, cookie=None, csrf=None, origin=None, p=None):
    h = {}
    if cookie:
        h["Cookie"] = "crmbridge_session=" + cookie
    if csrf:
        h["X-CSRF-Token"] = csrf
    if origin:
        h["Origin"] = origin
    st, hd, data = request(method, path, headers=h, p=p)
    try:
        return st, hd, json.loads(data)
    except ValueError:
        return st, hd, data


def link(config_path=None):
    import subprocess
    r = subprocess.run([CTL, "-c", config_path or conf, "dashboard"], capture_output=True, text=True, timeout=30,
                       env={k: v for k, v in os.environ.items() if not k.startswith("CRMBRIDGE_")})
    return r.returncode, r.stdout.strip(), r.stderr


def open_link(url):
    u = urllib.parse.urlsplit(url)
    return request("GET", u.path + "?" + u.query, p=u.port)


def session_cookie(headers):
    m = re.search(r"crmbridge_session=([0-9a-f]*)", headers.get("Set-Cookie") or "")
    return m.group(1) if m else None


# ---- the conversations the page will show ----
converse(ANA, ["Hola, soy Ana Pérez y busco un sofá de 3 puestos en cuero para mi sala",
               "Mi correo es ana.perez@example.com, estoy en Bogotá, presupuesto 3 millones, lo necesito este mes"])
converse(LUIS, ["Buenas, necesito hablar con una persona por favor, es urgente"])
converse(EVA, ["Hola, ¿hacen envíos a Sevilla? Me llamo Eva"])
st, _, conv = api("GET", "/api/conversations")
is_eq(st, 401, "GET /api/conversations needs the admin token")


def listed():
    st, _, data = request("GET", "/api/conversations?limit=10", headers={"Authorization": "Bearer " + ADMIN})
    return st, json.loads(data)


# The list follows the analytics' record of activity, written within a second of each turn.
wait_for(lambda: len(listed()[1]["conversations"]) == 3, 5)
st, conv = listed()
is_eq(st, 200, "GET /api/conversations with the admin token")
is_eq(sorted(c["phone"] for c in conv["conversations"]), sorted([ANA, LUIS, EVA]), "the three conversations listed")
ana = [c for c in conv["conversations"] if c["phone"] == ANA][0]
is_eq(ana["name"], "Ana Pérez", "Ana's name in the list")
is_eq(ana["phone_masked"], "+57******2233", "her phone masked")
ok(ana["quality"] in ("hot", "warm", "cold"), "her quality", ana)
luis = [c for c in conv["conversations"] if c["phone"] == LUIS][0]
ok(luis["waiting_for_person"] and luis["paused"] is not None, "Luis waits for a person, the bot paused", luis)
st, _, data = request("GET", "/api/conversations?q=PEREZ", headers={"Authorization": "Bearer " + ADMIN})
is_eq([c["phone"] for c in json.loads(data)["conversations"]], [ANA], "searched by name, accents and case folded")
st, _, data = request("GET", "/api/conversations?q=999%2088", headers={"Authorization": "Bearer " + ADMIN})
is_eq([c["phone"] for c in json.loads(data)["conversations"]], [LUIS], "searched by phone digits")
st, _, data = request("GET", "/api/conversations?limit=0", headers={"Authorization": "Bearer " + ADMIN})
is_eq(st, 400, "a limit out of range is refused")

# ---- the page without a session ----
st, hd, page = request("GET", "/admin")
is_eq(st, 200, "GET /admin answers the page")
csp = hd.get("Content-Security-Policy") or ""
ok("script-src 'self'" in csp and "unsafe-inline" not in csp and "default-src 'none'" in csp
   and "connect-src 'self'" in csp and "frame-ancestors 'none'" in csp, "a strict Content-Security-Policy", csp)
is_eq(hd.get("X-Frame-Options"), "DENY", "not framed")
ok(b"Ana" not in page and b"2233" not in page, "the page has no data")
ok(not re.search(rb"<script(?![^>]*\bsrc=)", page) and not re.search(rb"\son[a-z]+=", page),
   "no inline script or event handler in the page")
for f in ("/admin/app.js", "/admin/app.css", "/admin/icon.svg", "/admin/chart.js"):
    st, hd, body = request("GET", f)
    is_eq(st, 200, "GET " + f)
    ok(hd.get("ETag") and hd.get("Content-Security-Policy"), f + " has an ETag and the CSP")
st, hd, _ = request("GET", "/admin/app.js", headers={"If-None-Match": request("GET", "/admin/app.js")[1]["ETag"]})
is_eq(st, 304, "an unchanged file: 304")
for path in ("/admin/api/conversations", "/admin/api/status", "/admin/api/analytics",
             "/admin/api/conversation/%2B573001112233/history"):
    st, _, body = api("GET", path)
    ok(st == 401 and ANA not in json.dumps(body) and "Ana" not in json.dumps(body), "no session, no data: " + path)
st, _, _ = api("GET", "/admin/api/conversations", cookie="ab" * 32)
is_eq(st, 401, "a made-up session id: 401")
st, _, _ = request("GET", "/admin", p=port)
is_eq(st, 404, "with an admin listener, the dashboard is not on the public one")

# ---- login links ----
st, _, _ = request("POST", "/api/dashboard/link")
is_eq(st, 401, "a login link needs the admin token")
rc, url, err = link()
is_eq(rc, 0, "crmbridgectl dashboard")
ok(re.fullmatch(re.escape(ADMIN_URL) + r"/admin/login\?code=[0-9a-f]{64}", url), "it prints the link", url)
ok(ADMIN not in url and "works once" in err, "the link does not carry the admin token; it says it works once", err)
code = url.split("code=")[1]
ok(redis.cli("EXISTS", "crmbridge:{admin}:login:" + hashlib.sha256(code.encode()).hexdigest()).strip() == "1"
   and redis.cli("EXISTS", "crmbridge:{admin}:login:" + code).strip() == "0", "Redis keeps the code's hash, not the code")
ttl = int(redis.cli("PTTL", "crmbridge:{admin}:login:" + hashlib.sha256(code.encode()).hexdigest()))
ok(250000 < ttl <= 300000, "the code lives dashboard.link_ttl (5 min)", ttl)
u = urllib.parse.urlsplit(url)
st, hd, _ = request("HEAD", u.path + "?" + u.query)
ok(st == 200 and session_cookie(hd) is None, "HEAD on the link (a link checker) does not spend it")
st, hd, _ = open_link(url)
is_eq(st, 303, "the link: 303")
is_eq(hd.get("Location"), "/admin", "to /admin")
cookie = session_cookie(hd)
sc = hd.get("Set-Cookie") or ""
ok(cookie and len(cookie) == 64, "a session cookie", sc)
ok("HttpOnly" in sc and "SameSite=Strict" in sc and "Path=/admin" in sc and "Max-Age=43200" in sc
   and "Secure" not in sc, "HttpOnly, SameSite=Strict, Path=/admin, 12 h; not Secure over http", sc)
st, hd, body = open_link(url)
ok(st == 403 and session_cookie(hd) is None and b"does not work" in body, "the same link again: refused, no cookie")
st, _, _ = request("GET", "/admin/login?code=xyz")
is_eq(st, 400, "a malformed code: 400")
ok(redis.cli("EXISTS", "crmbridge:{admin}:session:" + hashlib.sha256(cookie.encode()).hexdigest()).strip() == "1"
   and cookie not in redis.cli("KEYS", "*"), "Redis keeps the session id's hash only")
ok("dashboard: a session was opened with a login link" in d.logtext(), "the login is logged")

st, _, s = api("GET", "/admin/api/session", cookie)
ok(st == 200 and len(s["csrf"]) == 64 and s["via"] == "link" and s["charts"], "the session: its CSRF token", s)
csrf = s["csrf"]
st, _, body = api("GET", "/admin/api/conversations", cookie)
is_eq(sorted(c["phone"] for c in body["conversations"]), sorted([ANA, LUIS, EVA]), "with the session: the list")
st, _, body = api("GET", "/admin/api/analytics?days=30", cookie)
ok(st == 200 and len(body["daily"]) == 30 and body["daily"][-1]["conversations"] == 3, "the analytics, 30 days",
   body.get("daily", [{}])[-1])

# A change: the CSRF token and the page's origin.
st, _, _ = api("POST", "/admin/api/conversation/%2B573001112233/pause", cookie)
is_eq(st, 403, "pause without the CSRF token: 403")
st, _, _ = api("POST", "/admin/api/conversation/%2B573001112233/pause", cookie, "0" * 64)
is_eq(st, 403, "pause with a wrong CSRF token: 403")
st, _, _ = api("POST", "/admin/api/conversation/%2B573001112233/pause", cookie, csrf, "http://evil.example")
is_eq(st, 403, "pause from another site's page: 403")
st, _, st_ana = api("GET", "/admin/api/conversation/%2B573001112233/status", cookie)
is_eq(st_ana["paused"], None, "nothing was paused by the refused requests")
st, _, body = api("POST", "/admin/api/conversation/%2B573001112233/pause?for=2h", cookie, csrf, ADMIN_URL)
ok(st == 200 and body["paused"], "pause with the session's token from the page's origin", body)
ok(wait_for(lambda: "dashboard: paused +57******2233 (POST, a session opened with a login link)" in d.logtext(), 5),
   "the change is audited in the log, the phone masked")
ok(ANA not in d.logtext(), "the log never has the whole phone")
st, _, body = api("POST", "/admin/api/conversation/%2B573001112233/resume", cookie, csrf, ADMIN_URL)
is_eq(st, 200, "resume")
st, _, _ = api("POST", "/admin/api/conversation/notaphone/reset", cookie, csrf, ADMIN_URL)
is_eq(st, 400, "a reset of something that is not a phone: 400")
ok(wait_for(lambda: "dashboard: reset <redacted> failed (POST answered 400" in d.logtext(), 5)
   and "dashboard: reset <redacted> (POST" not in d.logtext(), "the log says it failed, not that it was done")

# Another instance on the same Redis knows the session; a restart keeps it.
aport2 = free_port()
conf2 = config("second.conf", "admin_listen = 127.0.0.1:%d" % aport2, "[dashboard]\nlink_ttl = 1s\n",
              listen=free_port())
d2 = start(conf2)
ok(d2.wait_notify("READY=1", 15), "a second instance on the same Redis")
st, _, body = api("GET", "/admin/api/conversations", cookie, p=aport2)
ok(st == 200 and len(body["conversations"]) == 3, "the second instance takes the session", st)
# Its links live 1 s: one opened later fails.
rc, url2, _ = link(conf2)
time.sleep(1.5)
st, hd, _ = open_link(url2)
ok(st == 403 and session_cookie(hd) is None, "a link opened after dashboard.link_ttl: refused")
d2.signal(15)
d2.wait(15)
d.signal(15)
ok(d.wait(20) == 0, "the first instance stops")
d = start(conf)
ok(d.wait_notify("READY=1", 15), "started again")
st, _, body = api("GET", "/admin/api/conversations", cookie)
is_eq(st, 200, "the session outlives a restart (it is in Redis)")

# The token form.
st, hd, _ = request("POST", "/admin/login", body="token=wrong-token-0000000000",
                    headers={"Content-Type": "application/x-www-form-urlencoded", "Origin": ADMIN_URL})
ok(st == 303 and hd.get("Location") == "/admin?login=refused" and session_cookie(hd) is None,
   "a wrong token: back to the form, no session")
st, hd, _ = request("POST", "/admin/login", body="token=" + ADMIN,
                    headers={"Content-Type": "application/x-www-form-urlencoded", "Origin": "http://evil.example"})
ok(st == 403 and session_cookie(hd) is None, "the form posted from another site: refused")
st, hd, _ = request("POST", "/admin/login", body="token=" + ADMIN,
                    headers={"Content-Type": "application/x-www-form-urlencoded", "Origin": ADMIN_URL})
c2 = session_cookie(hd)
ok(st == 303 and c2, "the admin token typed into the form: a session")
st, _, s2 = api("GET", "/admin/api/session", c2)
is_eq(s2.get("via"), "token", "a session opened with the token")
st, _, data = request("GET", "/system/status", headers={"Authorization": "Bearer " + ADMIN})
is_eq(json.loads(data)["dashboard"], {"enabled": True, "charts": True, "login_links": 0, "logins": 1,
                                      "login_failures": 1, "actions": 0}, "/system/status counts this process's logins")
st, _, data = request("GET", "/metrics", headers={"Authorization": "Bearer " + ADMIN})
ok(b"crmbridge_dashboard_logins_total 1" in data and b"crmbridge_dashboard_login_failures_total 1" in data,
   "/metrics counts them too")
# Logging out ends it.
st, hd, _ = api("POST", "/admin/api/logout", c2, s2["csrf"], ADMIN_URL)
ok(st == 200 and "Max-Age=0" in (hd.get("Set-Cookie") or ""), "logging out removes the cookie")
st, _, _ = api("GET", "/admin/api/session", c2)
is_eq(st, 401, "the closed session is refused")


# ---- the browser ----
def shot(b, path, width, mobile=False):
    """The whole page: the viewport made as tall as the page (DevTools' device metrics), the charts drawn again at
    that size, then a screenshot."""
    h = b.execute("return document.documentElement.scrollHeight")
    b.cdp("Emulation.setDeviceMetricsOverride", {"width": width, "height": h, "deviceScaleFactor": 1, "mobile": mobile})
    time.sleep(0.6)
    b.wait_for("!window.Chart || ['chart-quality', 'chart-daily'].every(id => Chart.getChart(id).height > 0)",
               what="the charts at the new size")
    b.screenshot(path)
    if not mobile:
        b.cdp("Emulation.clearDeviceMetricsOverride")


def browser_part():
    shots = os.environ.get("DASHBOARD_SCREENSHOTS") or wd
    os.makedirs(shots, exist_ok=True)
    with webdriver.Browser(width=1280, height=900) as b:
        b.get(ADMIN_URL + "/admin")
        b.wait_for("document.getElementById('login') && !document.getElementById('login').hidden",
                   what="the login form")
        ok(b.execute("return document.getElementById('app').hidden"), "browser: without a session, no dashboard")
        text = b.execute("return document.body.innerText")
        ok("Ana" not in text and "2233" not in text, "browser: no data shown without a session")
        # A spent link.
        b.get(url)
        ok("does not work" in b.execute("return document.body.innerText"), "browser: a replayed link is refused")
        # A fresh one.
        _, fresh, _ = link()
        b.get(fresh)
        b.wait_for("document.body.dataset.ready === '1'", what="the dashboard drawn", timeout=30)
        is_eq(b.url(), ADMIN_URL + "/admin", "browser: landed on /admin, the code gone from the address")
        b.console_errors()  # before: the page asked for its session without one (401) and the spent link (403)
        ck = [c for c in b.cookies() if c["name"] == "crmbridge_session"]
        ok(ck and ck[0].get("httpOnly") and ck[0].get("sameSite") == "Strict", "browser: the cookie", ck)
        ok(b.execute("return document.cookie").find("crmbridge_session") < 0, "browser: scripts cannot read it")
        # The charts.
        charts = b.execute("""
            const out = {};
            for (const id of ['chart-quality', 'chart-daily', 'chart-model']) {
              const c = window.Chart && Chart.getChart(id);
              const cv = document.getElementById(id);
              const px = cv.getContext('2d').getImageData(0, 0, cv.width, cv.height).data;
              let ink = 0;
              for (let i = 3; i < px.length; i += 4) if (px[i] > 0) ink++;
              out[id] = c ? {type: c.config.type, labels: c.data.labels.length,
                             sums: c.data.datasets.map(d => d.data.reduce((a, b) => a + b, 0)), ink, w: cv.width} : null;
            }
            return out;""")
        q = charts["chart-quality"]
        ok(q and q["type"] == "bar" and q["labels"] == 30 and sum(q["sums"]) >= 1 and q["ink"] > 1000,
           "browser: leads by quality per day, drawn by Chart.js", q)
        dd = charts["chart-daily"]
        ok(dd and dd["sums"][0] == 4 and dd["ink"] > 1000, "browser: conversations per day drawn", dd)
        ok(charts["chart-model"] and charts["chart-model"]["ink"] > 1000, "browser: model vs rules drawn")
        today = b.find("#today").text()
        ok("Conversations started\n4" in today or time.strftime("%Y-%m-%d", time.gmtime()) != DAY0,
           "browser: today's conversations", today)
        # The list.
        rows = b.execute("return [...document.querySelectorAll('#conversations tbody tr')].map(r => r.innerText)")
        ana_row = [r for r in rows if "+57******2233" in r]
        ok(ana_row and "Ana Pérez" in ana_row[0] and ANA not in "".join(rows), "browser: Ana listed, phone masked",
           rows)
        luis_row = [r for r in rows if "+57******8877" in r]
        ok(luis_row and "waiting for a person" in luis_row[0], "browser: Luis waits for a person", luis_row)
        shot(b, os.path.join(shots, "dashboard.png"), 1280)
        # Search.
        b.find("#search").send_keys("ana")
        b.wait_for("document.querySelectorAll('#conversations tbody tr').length === 1", what="the search")
        ok("Ana Pérez" in b.find("#conversations tbody tr").text(), "browser: the search finds Ana")
        # One conversation.
        # Clicked in the page's own script: the row is not replaced by a refresh between finding and clicking it.
        b.execute("document.querySelector('#conversations tbody tr').click()")
        b.wait_for("document.querySelectorAll('#history li').length >= 4", what="the history")
        hist = b.find("#history").text()
        ok("busco un sofá de 3 puestos en cuero" in hist, "browser: her history, as she wrote it", hist[:200])
        ok(ANA in b.find("#detail-title").text(), "browser: the detail names the phone")
        facts = b.find("#detail-facts").text()
        ok(re.search(r"Interested in\s+sofá", facts) and re.search(r"Budget\s+\S", facts)
           and re.search(r"E-mail\s+ana.perez@example.com", facts), "browser: what she told, by field", facts)
        b.find("#detail [data-action=pause]").click()
        b.wait_for("document.getElementById('detail-result').textContent.startsWith('Paused')", what="paused")
        st, _, s = api("GET", "/admin/api/conversation/%2B573001112233/status", cookie)
        ok(s["paused"] and s["paused"]["by"] == "admin", "browser: the pause button paused her (seen in the API)",
           s["paused"])
        ok(wait_for(lambda: d.logtext().count("dashboard: paused +57******2233") >= 1, 5),
           "browser: the pause is audited")
        shot(b, os.path.join(shots, "dashboard-conversation.png"), 1280)
        # Erase: the confirmation names the phone; cancelling erases nothing.
        b.find("#detail [data-action=erase]").click()
        b.wait_for("document.getElementById('confirm').open", what="the confirmation")
        ok(ANA in b.find("#confirm").text(), "browser: the confirmation names the phone", b.find("#confirm").text())
        b.find("#confirm button[value=cancel]").click()
        b.wait_for("!document.getElementById('confirm').open", what="cancelled")
        ok(not wait_for(lambda: api("GET", "/admin/api/conversation/%2B573001112233/status", cookie)[0] != 200, 1.5),
           "browser: cancelled, nothing erased")
        b.find("#detail [data-action=erase]").click()
        b.wait_for("document.getElementById('confirm').open", what="the confirmation")
        b.find("#confirm-ok").click()
        b.wait_for("document.getElementById('detail-result').textContent.startsWith('Erased')", what="erased")
        res = b.find("#detail-result").text()
        ok(ANA in res and "is gone" in res and "no Odoo configured" in res, "browser: the page says what was erased",
           res)
        ok(b.execute("return [...document.querySelectorAll('#detail [data-action]')].every(x => x.disabled)") and
           b.find("#history").text() == "", "browser: nothing left to act on, her history gone from the page")
        st, _, _ = api("GET", "/admin/api/conversation/%2B573001112233/status", cookie)
        is_eq(st, 404, "browser: erased (the API no longer knows her)")
        ok("dashboard: erased +57******2233" in d.logtext(), "browser: the erasure is audited")
        b.find("#search").clear()
        b.execute("document.getElementById('search').dispatchEvent(new Event('input'))")
        b.wait_for("document.querySelectorAll('#conversations tbody tr').length === 3", what="the list without Ana")
        # The dead letter: shown with the phone masked and Twilio's reason, then retried through the page.
        dead = b.find("#dead tbody").text()
        ok("+57******0000" in dead and "21408" in dead and PEDRO not in dead, "browser: the dead letter listed", dead)
        b.find("#retry-dead").click()
        b.wait_for("document.getElementById('confirm').open", what="the retry's confirmation")
        b.find("#confirm-ok").click()
        b.wait_for("document.getElementById('dead-result').textContent.includes('queued again')", what="retried")
        ok("1 replies queued again" in b.find("#dead-result").text(), "browser: one reply queued again",
           b.find("#dead-result").text())
        ok(wait_for(lambda: len(replies(PEDRO)) == 1, 20), "browser: the retried reply reached Twilio")
        b.wait_for("document.querySelector('#dead tbody').innerText.includes('No dead letters')",
                   what="the list emptied")
        ok("dashboard: dead letters retried" in d.logtext(), "browser: the retry is audited")
        # The page refreshes by itself: a customer who writes now appears without anything being clicked.
        is_eq(post(ROSA, "Buenas tardes, soy Rosa, ¿tienen camas dobles?"), 200, "Rosa writes while the page is open")
        fresh_rows = lambda: b.execute("return document.querySelector('#conversations tbody').innerText")  # noqa
        ok(wait_for(lambda: "+57******1111" in fresh_rows() and "Rosa" in fresh_rows(), 30),
           "browser: the list refreshed by itself (Rosa, without a click)", fresh_rows())
        # Nothing left the host; nothing went wrong.
        reqs = b.network_requests()
        others = [r for r in reqs if not r.startswith(ADMIN_URL + "/") and not r.startswith("data:")]
        ok(reqs and not others, "browser: no request to another host", others)
        ok(any(r.endswith("/admin/chart.js") for r in reqs), "browser: Chart.js came from the daemon")
        errs = b.console_errors()
        ok(not [e for e in errs if "login?code" not in e], "browser: no console error (no CSP violation)", errs)
        # Log out.
        b.find("#logout").click()
        b.wait_for("!document.getElementById('login').hidden", what="the login form after logging out")
        # The token form in the browser.
        b.find("#token").send_keys(ADMIN)
        b.find("#login button[type=submit]").click()
        b.wait_for("document.body.dataset.ready === '1'", what="logged in with the token", timeout=30)
        ok(not b.execute("return document.getElementById('app').hidden"), "browser: logged in with the token form")

    with webdriver.Browser(width=390, height=844, mobile=True) as m:
        _, fresh, _ = link()
        m.get(fresh)
        m.wait_for("document.body.dataset.ready === '1'", what="the dashboard on a phone", timeout=30)
        w = m.execute("""
            const files = performance.getEntriesByType('resource').filter(r => !r.name.includes('/admin/api/'));
            const api = performance.getEntriesByType('resource').filter(r => r.name.includes('/admin/api/'));
            const doc = performance.getEntriesByType('navigation')[0];
            return {page: doc.transferSize + files.reduce((a, r) => a + r.transferSize, 0), files: files.length + 1,
                    data: api.reduce((a, r) => a + r.transferSize, 0), calls: api.length};""")
        # A new browser: nothing cached, every file came over the wire.
        print("# page weight: %d bytes in %d files, then %d bytes of data in %d API calls (4 conversations)"
              % (w["page"], w["files"], w["data"], w["calls"]), flush=True)
        ok(w["page"] < 300000, "phone: the page weighs under 300 KB", w)
        w = m.execute("return [document.documentElement.scrollWidth, window.innerWidth]")
        ok(w[0] <= w[1], "phone width: no sideways scrolling", w)
        ok(m.execute("return Chart.getChart('chart-quality').width") <= 390, "phone width: the chart fits")
        shot(m, os.path.join(shots, "dashboard-phone.png"), 390, mobile=True)
        ok(not [r for r in m.network_requests() if not r.startswith(ADMIN_URL + "/")], "phone: no other host")


# A fourth customer whose reply Twilio refuses for good (21408): a dead letter for the page to show and retry.
control(tport, {"script": [{"status": 400, "code": 21408}]})
is_eq(post(PEDRO, "Hola, quiero información de los comedores"), 200, "Pedro writes")
ok(wait_for(lambda: len(json.loads(request("GET", "/api/dead-letters", headers={"Authorization": "Bearer " + ADMIN})[2])
                        ["replies"]) == 1, 20), "his reply is given up: a dead letter")

try:
    browser_part()
except webdriver.WebDriverUnavailable as e:
    ok(False, "headless Chromium: " + str(e))

# ---- a Secure cookie through https; the dashboard off; Chart.js missing ----
d.signal(15)
d.wait(20)
conf3 = config("https.conf", "", "[dashboard]\nchartjs = /nonexistent/chart.min.js\n",
              public="https://bot.example.com")
d = start(conf3)
ok(d.wait_notify("READY=1", 15), "a daemon with an https public_url, the admin API on its listener")
st, hd, _ = request("POST", "/api/dashboard/link", headers={"Authorization": "Bearer " + ADMIN}, p=port)
path = json.loads(_)["path"] if st == 200 else ""
st, hd, _ = request("GET", path, p=port)
ok(st == 303 and "; Secure" in (hd.get("Set-Cookie") or ""), "through https: the cookie is Secure", hd.get("Set-Cookie"))
st, _, _ = request("GET", "/admin/chart.js", p=port)
is_eq(st, 404, "Chart.js missing: 404")
ok("cannot read Chart.js at /nonexistent/chart.min.js" in d.logtext() and "libjs-chart.js" in d.logtext(),
   "Chart.js missing: the log says which file and what to install")
c3 = session_cookie(hd)
rc, url3, _ = link(conf3)
ok(rc == 0 and re.fullmatch(r"https://bot\.example\.com/admin/login\?code=[0-9a-f]{64}", url3),
   "crmbridgectl dashboard: behind the proxy, the link is on the public address", url3)
st, _, s = api("GET", "/admin/api/session", c3, p=port)
ok(st == 200 and s["charts"] is False, "the page is told to show tables")
try:
    with webdriver.Browser(width=1280, height=900) as b:
        st, _, data = request("POST", "/api/dashboard/link", headers={"Authorization": "Bearer " + ADMIN}, p=port)
        b.get("http://127.0.0.1:%d%s" % (port, json.loads(data)["path"]))
        b.wait_for("document.body.dataset.ready === '1'", what="the dashboard without Chart.js", timeout=30)
        t = b.execute("return [document.querySelector('.charts').hidden, document.getElementById('daily-table').hidden,"
                      " document.querySelectorAll('#daily-table tbody tr').length, document.body.innerText]")
        ok(t[0] and not t[1] and t[2] == 30 and "libjs-chart.js" in t[3], "browser: without Chart.js, a table of the days",
           t[:3])
except webdriver.WebDriverUnavailable as e:
    ok(False, "headless Chromium: " + str(e))
# A new admin token ends the sessions opened under the old one (a leaked token's sessions with it).
write_config(conf3, open(conf3).read().replace("admin_token = " + ADMIN, "admin_token = another-admin-token-98765"))
d.clear()
d.signal(1)
ok(d.wait_notify("READY=1", 15), "reloaded with a new admin token")
st, hd, _ = api("GET", "/admin/api/session", c3, p=port)
ok(st == 401 and "Max-Age=0" in (hd.get("Set-Cookie") or ""), "a session of the old token is refused, its cookie removed")
ok(wait_for(lambda: redis.cli("EXISTS", "crmbridge:{admin}:session:" + hashlib.sha256(c3.encode()).hexdigest())
            .strip() == "0", 5), "and closed in Redis")
d.signal(15)
d.wait(20)
conf4 = config("off.conf", "admin_listen = 127.0.0.1:%d" % aport, "[dashboard]\nenabled = no\n")
d = start(conf4)
ok(d.wait_notify("READY=1", 15), "a daemon with the dashboard off")
st, _, _ = request("GET", "/admin")
is_eq(st, 404, "dashboard.enabled = no: /admin is 404")
st, _, _ = request("POST", "/api/dashboard/link", headers={"Authorization": "Bearer " + ADMIN})
is_eq(st, 404, "dashboard.enabled = no: no login links")
d.signal(15)
d.wait(20)
twilio.terminate()
redis.stop()
done()
