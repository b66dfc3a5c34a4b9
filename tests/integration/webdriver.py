"""A small W3C WebDriver client for the browser tests, standard library only.

Debian's chromium-driver package ships chromedriver, which speaks the W3C
WebDriver protocol: JSON over plain HTTP.  That is all a test needs to drive a
headless Chromium, so no Selenium (and no pip) is involved.  Browser starts
chromedriver on a free loopback port, opens a session with a fresh profile, and
talks to it through urllib.

    with Browser() as b:
        b.get("http://127.0.0.1:8080/")
        b.find("#go").click()
        b.wait_for("document.title == 'done'", what="the title")

Needs: apt-get install chromium chromium-driver.  Works as root (--no-sandbox).
Run this file directly for a self-test against a throwaway local page.
"""

import base64
import json
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
import urllib.error
import urllib.request

ELEMENT_KEY = "element-6066-11e4-a52e-4f735466cecf"   # the W3C web element key
HTTP_TIMEOUT = 60
# Chromium lists its Google account cookies at start-up and there is no switch
# to stop it, so --gaia-url points it at port 9, which Chromium refuses to
# connect to (ERR_UNSAFE_PORT): the request never leaves the browser.
GAIA_SINK = "http://127.0.0.1:9/"

# A quiet headless Chromium: no sandbox (we run as root) and no background
# traffic to Google.  The last four lines were found by watching Chromium's
# net log: without them it calls clients2.google.com (network time),
# update.googleapis.com (on-device AI model manifest, even with
# --disable-component-update) and accounts.google.com (ListAccounts).
CHROMIUM_ARGS = [
    "--headless=new", "--no-sandbox", "--disable-gpu", "--disable-quic",
    "--no-first-run", "--disable-background-networking",
    "--disable-component-update", "--disable-sync", "--disable-default-apps",
    "--disable-extensions", "--no-default-browser-check",
    "--metrics-recording-only", "--password-store=basic", "--use-mock-keychain",
    "--disable-features=Translate,OptimizationHints,MediaRouter,DialMediaRouteProvider,"
    "AutofillServerCommunication,CertificateTransparencyComponentUpdater,NetworkTimeServiceQuerying",
    "--optimization-guide-manifest-override=/dev/null",
    "--gaia-url=" + GAIA_SINK,
    "--no-proxy-server",
]
MOBILE_UA = ("Mozilla/5.0 (Linux; Android 14; Pixel 8) AppleWebKit/537.36 "
             "(KHTML, like Gecko) Chrome/124.0.0.0 Mobile Safari/537.36")


class WebDriverUnavailable(Exception):
    """chromium or chromedriver is missing or would not start."""


class WebDriverError(Exception):
    """chromedriver answered a command with a W3C error."""

    def __init__(self, command, error, message=""):
        super().__init__("%s: %s: %s" % (command, error, message))
        self.command, self.error, self.message = command, error, message


def _free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Browser:
    def __init__(self, width=1280, height=900, mobile=False, timeout=20):
        self.timeout = timeout
        self._proc = self._session = self._tmp = None
        self._opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
        driver = os.environ.get("CHROMEDRIVER", "/usr/bin/chromedriver")
        chromium = os.environ.get("CHROMIUM", "/usr/bin/chromium")
        for path in (driver, chromium):
            if not os.access(path, os.X_OK):
                raise WebDriverUnavailable("%s not found or not executable; install it with: "
                                           "apt-get install chromium chromium-driver" % path)
        # One private temp dir per Browser: profile, chromedriver's log, net log.
        self._tmp = tempfile.mkdtemp(prefix="webdriver-")
        self._log = os.path.join(self._tmp, "chromedriver.log")
        self._netlog = os.path.join(self._tmp, "netlog.json")
        self._netlog_pos, self._netlog_types = 0, None
        try:
            self._start_driver(driver)
            self._start_session(chromium, width, height, mobile)
        except BaseException:
            self.close()
            raise

    def _start_driver(self, driver):
        # Someone else may grab the free port before chromedriver binds it: retry.
        for _ in range(3):
            port = _free_port()
            self._base = "http://127.0.0.1:%d" % port
            with open(self._log, "ab") as log:
                self._proc = subprocess.Popen([driver, "--port=%d" % port], stdin=subprocess.DEVNULL,
                                              stdout=log, stderr=subprocess.STDOUT,
                                              start_new_session=True)
            deadline = time.time() + 10
            while time.time() < deadline and self._proc.poll() is None:
                try:
                    if self._request("GET", "/status").get("ready"):
                        return
                except (WebDriverError, AttributeError):
                    pass
                time.sleep(0.05)
            self._stop_driver()
        raise WebDriverUnavailable("%s would not start:\n%s" % (driver, self._log_tail()))

    def _start_session(self, chromium, width, height, mobile):
        args = CHROMIUM_ARGS + ["--window-size=%d,%d" % (width, height),
                                "--user-data-dir=" + os.path.join(self._tmp, "profile"),
                                "--log-net-log=" + self._netlog]
        # Open the first tab on about:blank.  Otherwise it is the new-tab page,
        # which in Debian's build first tries https://start.duckduckgo.com/.
        prefs = {"session.restore_on_startup": 4, "session.startup_urls": ["about:blank"]}
        options = {"binary": chromium, "args": args, "prefs": prefs}
        if mobile:
            options["mobileEmulation"] = {
                "deviceMetrics": {"width": 390, "height": 844, "pixelRatio": 2},
                "userAgent": MOBILE_UA}
        caps = {"browserName": "chrome", "goog:chromeOptions": options,
                "goog:loggingPrefs": {"performance": "ALL", "browser": "ALL"}}
        try:
            value = self._request("POST", "/session", {"capabilities": {"alwaysMatch": caps}})
        except WebDriverError as e:
            raise WebDriverUnavailable("%s would not start: %s\n%s" % (chromium, e, self._log_tail()))
        self._session = value["sessionId"]

    def _log_tail(self):
        try:
            with open(self._log, errors="replace") as f:
                return "".join(f.readlines()[-20:])
        except OSError:
            return ""

    def _stop_driver(self):
        if self._proc is None:
            return
        self._proc.terminate()
        try:
            self._proc.wait(5)
        except subprocess.TimeoutExpired:
            self._proc.kill()
            self._proc.wait()
        try:        # anything left behind in chromedriver's own process group
            os.killpg(self._proc.pid, signal.SIGKILL)
        except OSError:
            pass
        self._proc = None

    def close(self):
        if self._session:
            try:
                self._request("DELETE", "/session/" + self._session)   # Chromium quits
            except WebDriverError:
                pass
            self._session = None
        self._stop_driver()
        if self._tmp:
            shutil.rmtree(self._tmp, ignore_errors=True)
            self._tmp = None

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    # --- protocol plumbing -------------------------------------------------

    def _request(self, method, path, body=None):
        """One HTTP round trip to chromedriver; returns the reply's "value"."""
        command = "%s %s" % (method, path)
        data = json.dumps(body if body is not None else {}).encode() if method == "POST" else None
        req = urllib.request.Request(self._base + path, data=data, method=method,
                                     headers={"Content-Type": "application/json; charset=utf-8"})
        try:
            with self._opener.open(req, timeout=HTTP_TIMEOUT) as resp:
                raw = resp.read()
        except urllib.error.HTTPError as e:
            raw = e.read()              # W3C errors come as 4xx/5xx with a JSON body
        except OSError as e:            # URLError, refused, timed out
            raise WebDriverError(command, "connection failed", str(e)) from None
        try:
            value = json.loads(raw or b"{}").get("value")
        except ValueError:
            raise WebDriverError(command, "bad reply", raw[:200].decode(errors="replace")) from None
        if isinstance(value, dict) and "error" in value:
            error, message = value["error"], str(value.get("message", "")).split("\n")[0]
            if message.startswith(error + ": "):     # chromedriver repeats the error name
                message = message[len(error) + 2:]
            raise WebDriverError(command, error, message)
        return value

    def _cmd(self, method, sub, body=None):
        return self._wrap(self._request(method, "/session/%s%s" % (self._session, sub), body))

    def _wrap(self, value):
        """Turn W3C element references in a reply into Element objects."""
        if isinstance(value, list):
            return [self._wrap(v) for v in value]
        if isinstance(value, dict):
            if ELEMENT_KEY in value:
                return Element(self, value[ELEMENT_KEY])
            return {k: self._wrap(v) for k, v in value.items()}
        return value

    @staticmethod
    def _unwrap(value):
        """Turn Element objects in script arguments into W3C element references."""
        if isinstance(value, Element):
            return {ELEMENT_KEY: value.id}
        if isinstance(value, (list, tuple)):
            return [Browser._unwrap(v) for v in value]
        if isinstance(value, dict):
            return {k: Browser._unwrap(v) for k, v in value.items()}
        return value

    # --- navigation, lookup, scripts ---------------------------------------

    def get(self, url):
        self._cmd("POST", "/url", {"url": url})

    def url(self):
        return self._cmd("GET", "/url")

    def title(self):
        return self._cmd("GET", "/title")

    def find(self, css, timeout=None):
        """The first element matching css, waiting for it to appear."""
        deadline = time.time() + (self.timeout if timeout is None else timeout)
        while True:
            found = self.find_all(css)
            if found:
                return found[0]
            if time.time() >= deadline:
                raise TimeoutError("no element matches %r on %s" % (css, self.url()))
            time.sleep(0.1)

    def find_all(self, css):
        return self._cmd("POST", "/elements", {"using": "css selector", "value": css})

    def exists(self, css):
        return bool(self.find_all(css))

    def wait_for(self, cond, timeout=None, what=""):
        """Poll a JS expression (str) or a callable until truthy; return its value."""
        label = what or (cond if isinstance(cond, str) else "condition")
        if isinstance(cond, str):
            expr = cond
            cond = lambda: self.execute("return (%s);" % expr)  # noqa: E731
        deadline = time.time() + (self.timeout if timeout is None else timeout)
        last_error = None
        while True:
            try:
                value = cond()
                if value:
                    return value
            except WebDriverError as e:     # e.g. the page is still loading
                last_error = e
            if time.time() >= deadline:
                raise TimeoutError("timed out waiting for %s on %s%s" % (
                    label, self.url(), " (last error: %s)" % last_error if last_error else ""))
            time.sleep(0.1)

    def execute(self, script, *args):
        return self._cmd("POST", "/execute/sync", {"script": script, "args": self._unwrap(list(args))})

    def execute_async(self, script, *args):
        return self._cmd("POST", "/execute/async", {"script": script, "args": self._unwrap(list(args))})

    # --- screenshots, cookies, window --------------------------------------

    def screenshot(self, path):
        with open(path, "wb") as f:
            f.write(base64.b64decode(self._cmd("GET", "/screenshot")))

    def full_screenshot(self, path):
        """The whole page, not just the viewport, through Chrome's DevTools protocol."""
        try:
            metrics = self.cdp("Page.getLayoutMetrics")
            size = metrics.get("cssContentSize") or metrics["contentSize"]
            shot = self.cdp("Page.captureScreenshot", {
                "format": "png", "captureBeyondViewport": True,
                "clip": {"x": 0, "y": 0, "width": size["width"], "height": size["height"], "scale": 1}})
            data = base64.b64decode(shot["data"])
        except (WebDriverError, KeyError, TypeError, ValueError):
            return self.screenshot(path)
        with open(path, "wb") as f:
            f.write(data)

    def cookies(self):
        return self._cmd("GET", "/cookie")

    def delete_cookies(self):
        self._cmd("DELETE", "/cookie")

    def set_window_size(self, w, h):
        self._cmd("POST", "/window/rect", {"width": w, "height": h})

    # --- logs, DevTools, alerts --------------------------------------------

    def _log_entries(self, kind):
        # chromedriver hands out each log entry once, so this is what is new.
        return self._cmd("POST", "/se/log", {"type": kind}) or []

    def _netlog_urls(self):
        """URLs of new URL_REQUEST_START_JOB events in Chromium's net log file.

        The net log covers the whole browser: every frame, worker, service
        worker and Chromium's own requests.  The file is one JSON object per
        line: first the constants (event type names), then one event a line."""
        urls = []
        try:
            f = open(self._netlog, encoding="utf-8", errors="replace")
        except OSError:
            return urls
        with f:
            f.seek(self._netlog_pos)
            for line in iter(f.readline, ""):
                if not line.endswith("\n"):
                    break                   # half-written; read it next time
                self._netlog_pos = f.tell()
                line = line.strip().rstrip(",")
                if line.startswith('{"constants":'):
                    types = json.loads(line[len('{"constants":'):])["logEventTypes"]
                    self._netlog_types = {v: k for k, v in types.items()}
                    continue
                try:
                    event = json.loads(line)
                except ValueError:
                    continue                # the '"events": [' line
                if (self._netlog_types or {}).get(event.get("type")) == "URL_REQUEST_START_JOB":
                    url = (event.get("params") or {}).get("url")
                    if url:
                        urls.append(url)
        return urls

    def network_requests(self):
        """Every URL requested since the last call, de-duplicated, in order.

        Joins the page's DevTools events from the "performance" log (with
        navigations, which can fail before any requestWillBeSent) and the net
        log, which also sees workers and the browser itself.  URLs that never
        leave the browser (about:, data:, blob:) and GAIA_SINK are left out."""
        urls = []
        for entry in self._log_entries("performance"):
            try:
                msg = json.loads(entry["message"])["message"]
                if msg["method"] == "Network.requestWillBeSent":
                    urls.append(msg["params"]["request"]["url"])
                elif msg["method"] == "Page.frameStartedNavigating":
                    urls.append(msg["params"]["url"])
            except (KeyError, TypeError, ValueError):
                continue
        urls += self._netlog_urls()
        seen = []
        for url in urls:
            if url not in seen and not url.startswith(("about:", "data:", "blob:", GAIA_SINK)):
                seen.append(url)
        return seen

    def console_errors(self):
        """Browser console messages of level SEVERE since the last call."""
        return [e.get("message", "") for e in self._log_entries("browser") if e.get("level") == "SEVERE"]

    def cdp(self, cmd, params=None):
        return self._cmd("POST", "/goog/cdp/execute", {"cmd": cmd, "params": params or {}})

    def accept_alert(self):
        self._cmd("POST", "/alert/accept")

    def dismiss_alert(self):
        self._cmd("POST", "/alert/dismiss")

    def alert_text(self):
        return self._cmd("GET", "/alert/text")


class Element:
    """A DOM element in a Browser's current page."""

    def __init__(self, browser, element_id):
        self.browser, self.id = browser, element_id

    def __repr__(self):
        return "<Element %s>" % self.id

    def _cmd(self, method, sub, body=None):
        return self.browser._cmd(method, "/element/%s%s" % (self.id, sub), body)

    def click(self):
        self._cmd("POST", "/click")

    def send_keys(self, text):
        self._cmd("POST", "/value", {"text": text})

    def clear(self):
        self._cmd("POST", "/clear")

    def text(self):
        return self._cmd("GET", "/text")

    def attr(self, name):
        return self._cmd("GET", "/attribute/" + name)

    def prop(self, name):
        return self._cmd("GET", "/property/" + name)

    def displayed(self):
        return self._cmd("GET", "/displayed")

    def find(self, css):
        """The first matching descendant, no waiting; WebDriverError if none."""
        return self._cmd("POST", "/element", {"using": "css selector", "value": css})

    def find_all(self, css):
        return self._cmd("POST", "/elements", {"using": "css selector", "value": css})


if __name__ == "__main__":
    # Self-test: serve a tiny page on loopback and drive it.
    import http.server
    import threading

    FILES = {
        "/": b"<!doctype html><title>wd</title><link rel=icon href='data:,'>"
             b"<meta name=viewport content='width=device-width'>"
             b"<script src='/app.js'></script><button id=go>go</button><p id=out>before</p>",
        "/app.js": b"addEventListener('DOMContentLoaded', () => go.onclick = () => {"
                   b" new Worker('/worker.js');"
                   b" fetch('/data.json').then(r => r.json()).then(d => out.textContent = d.text); });",
        "/worker.js": b"fetch('/from-worker.json');",
        "/data.json": b'{"text": "after"}',
        "/from-worker.json": b"{}",
    }
    TYPES = {"js": "text/javascript", "json": "application/json"}

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self):
            body = FILES.get(self.path, b"")
            self.send_response(200 if self.path in FILES else 404)
            self.send_header("Content-Type", TYPES.get(self.path.rsplit(".", 1)[-1], "text/html"))
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *a):
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    base = "http://127.0.0.1:%d" % server.server_address[1]
    os.makedirs("/tmp/wd-helper", exist_ok=True)

    t0 = time.time()
    with Browser() as b:
        print("# one browser started in %.1f s" % (time.time() - t0))
        with Browser(mobile=True) as m:     # a second one at the same time
            assert (b._base, b._tmp) != (m._base, m._tmp)
            b.get(base + "/")
            assert b.title() == "wd", b.title()
            b.find("#go").click()
            assert b.wait_for("document.getElementById('out').textContent == 'after'", what="#out")
            assert b.find("#out").text() == "after"
            b.screenshot("/tmp/wd-helper/x.png")
            b.full_screenshot("/tmp/wd-helper/full.png")
            for p in ("/tmp/wd-helper/x.png", "/tmp/wd-helper/full.png"):
                with open(p, "rb") as f:
                    assert f.read(8) == b"\x89PNG\r\n\x1a\n", p
            reqs = []                       # everything b requested, gathered as we wait

            def saw(url):
                reqs.extend(b.network_requests())
                return url in reqs
            b.wait_for(lambda: saw(base + "/from-worker.json"), 5, "the worker's fetch")
            for want in ("/", "/app.js", "/data.json", "/worker.js"):
                assert base + want in reqs, (want, reqs)
            assert all(u.startswith(base + "/") for u in reqs), reqs    # nothing off-host
            assert b.console_errors() == [], b.console_errors()
            m.get(base + "/")     # 390 needs the page's viewport meta tag, else 980
            assert m.execute("return window.innerWidth") == 390
            assert "Android" in m.execute("return navigator.userAgent")
            assert all(u.startswith(base + "/") for u in m.network_requests())
        b.get(base + "/?again")             # only what is new since the last call
        again = b.network_requests()
        assert base + "/?again" in again and base + "/data.json" not in again, again
    server.shutdown()
    print("webdriver self-test: ok")
