"""A small W3C WebDriver client for the browser tests, standard library only.

Debian's chromium-driver package ships chromedriver, which speaks the W3C
WebDriver protocol as JSON over HTTP.  That is all a test needs to drive a
headless Chromium, so there is no Selenium (and no pip) involved: Browser
starts chromedriver on a free loopback port, opens a session with a fresh
profile, and sends it plain HTTP requests through urllib.

    with Browser() as b:
        b.get("http://127.0.0.1:8080/")
        b.find("#go").click()
        b.wait_for("document.title == 'done'", what="title")

Needs: apt-get install chromium chromium-driver.  Runs as root (--no-sandbox).
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

ELEMENT_KEY = "element-6066-11e4-a52e-4f735466cecf"   # W3C web element id key (spec: ...cecf)
HTTP_TIMEOUT = 60

# Flags for a quiet, reproducible headless Chromium: no sandbox (we run as
# root), and no background traffic to Google (updates, sync, translate...).
CHROMIUM_ARGS = [
    "--headless=new", "--no-sandbox", "--disable-gpu", "--disable-quic",
    "--no-first-run", "--disable-background-networking",
    "--disable-component-update", "--disable-sync", "--disable-default-apps",
    "--disable-extensions", "--no-default-browser-check",
    "--disable-features=Translate,OptimizationHints,MediaRouter,"
    "DialMediaRouteProvider,AutofillServerCommunication,"
    "CertificateTransparencyComponentUpdater",
    "--metrics-recording-only", "--password-store=basic", "--use-mock-keychain",
    "--no-proxy-server",          # tests talk to loopback; ignore any http_proxy
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
        self._proc = self._session = None
        self._opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
        driver = os.environ.get("CHROMEDRIVER", "/usr/bin/chromedriver")
        chromium = os.environ.get("CHROMIUM", "/usr/bin/chromium")
        for path, pkg in ((driver, "chromium-driver"), (chromium, "chromium")):
            if not os.access(path, os.X_OK):
                raise WebDriverUnavailable("%s not found (package %s); install with: "
                                           "apt-get install chromium chromium-driver" % (path, pkg))
        # One private temp dir per Browser: the Chromium profile and chromedriver's log.
        self._tmp = tempfile.mkdtemp(prefix="webdriver-")
        self._log = os.path.join(self._tmp, "chromedriver.log")
        try:
            self._start_driver(driver)
            self._start_session(chromium, width, height, mobile)
        except BaseException:
            self.close()
            raise

    def _start_driver(self, driver):
        # A free port can be taken by someone else before chromedriver binds it,
        # so try a few times.
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
                except (WebDriverError, ValueError, AttributeError):
                    pass
                time.sleep(0.05)
            self._stop_driver()
        raise WebDriverUnavailable("%s would not start:\n%s" % (driver, self._log_tail()))

    def _start_session(self, chromium, width, height, mobile):
        options = {"binary": chromium,
                   "args": CHROMIUM_ARGS + ["--window-size=%d,%d" % (width, height),
                                            "--user-data-dir=" + os.path.join(self._tmp, "profile")]}
        if mobile:
            options["mobileEmulation"] = {
                "deviceMetrics": {"width": 390, "height": 844, "pixelRatio": 2},
                "userAgent": MOBILE_UA}
        # Start on about:blank.  Without this the first tab is the new-tab page,
        # which in Debian's build first tries https://start.duckduckgo.com/.
        options["prefs"] = {"session.restore_on_startup": 4, "session.startup_urls": ["about:blank"]}
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
        try:        # anything chromedriver left behind in its own process group
            os.killpg(self._proc.pid, signal.SIGKILL)
        except OSError:
            pass
        self._proc = None

    def close(self):
        if self._session:
            try:
                self._request("DELETE", "/session/" + self._session)
            except (WebDriverError, OSError):
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
            raw = e.read()          # W3C errors come with a 4xx/5xx status and a JSON body
        except (urllib.error.URLError, OSError) as e:
            raise WebDriverError(command, "connection failed", str(e)) from None
        try:
            value = json.loads(raw or b"{}").get("value")
        except ValueError:
            raise WebDriverError(command, "bad reply", raw[:200].decode(errors="replace")) from None
        if isinstance(value, dict) and "error" in value:
            raise WebDriverError(command, value["error"], value.get("message", "").split("\n")[0])
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

    # --- navigation and lookup ---------------------------------------------

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
        """Poll a JS expression (str) or a callable until it is truthy; return its value."""
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
            except WebDriverError as e:   # e.g. a page still loading; keep polling
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
        # chromedriver hands out each log entry once: this returns what is new.
        return self._cmd("POST", "/se/log", {"type": kind}) or []

    def network_requests(self):
        """URLs requested since the last call (all frames and workers), de-duplicated, in order."""
        urls = []
        for entry in self._log_entries("performance"):
            try:
                msg = json.loads(entry["message"])["message"]
                if msg["method"] == "Network.requestWillBeSent":
                    url = msg["params"]["request"]["url"]
                elif msg["method"] == "Page.frameStartedNavigating":
                    # A navigation that fails very early (e.g. DNS) may have no
                    # requestWillBeSent, so count navigations too.
                    url = msg["params"]["url"]
                else:
                    continue
                if url not in urls:
                    urls.append(url)
            except (KeyError, TypeError, ValueError):
                continue
        return urls

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
        """The first matching descendant, no waiting; WebDriverError if there is none."""
        return self._cmd("POST", "/element", {"using": "css selector", "value": css})

    def find_all(self, css):
        return self._cmd("POST", "/elements", {"using": "css selector", "value": css})


if __name__ == "__main__":
    # Self-test: serve a tiny page on loopback and drive it.
    import http.server
    import threading
    import urllib.parse

    FILES = {
        "/": ("text/html", b"<!doctype html><html><head><title>wd</title>"
              b"<link rel=icon href='data:,'><script src='/app.js'></script></head>"
              b"<body><button id=go>go</button><p id=out>before</p></body></html>"),
        "/app.js": ("text/javascript", b"addEventListener('DOMContentLoaded', () => "
                    b"document.getElementById('go').onclick = () => fetch('/data.json')"
                    b".then(r => r.json()).then(d => { out.textContent = d.text; }));"),
        "/data.json": ("application/json", b'{"text": "after"}'),
    }

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self):
            ctype, body = FILES.get(self.path, ("text/plain", None))
            self.send_response(200 if body else 404)
            self.send_header("Content-Type", ctype)
            self.send_header("Content-Length", str(len(body or b"")))
            self.end_headers()
            self.wfile.write(body or b"")

        def log_message(self, *a):
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    base = "http://127.0.0.1:%d" % server.server_address[1]
    os.makedirs("/tmp/wd-helper", exist_ok=True)

    t0 = time.time()
    with Browser() as b, Browser(mobile=True) as m:     # two at once must not collide
        print("# two browsers started in %.1f s" % (time.time() - t0))
        b.get(base + "/")
        assert b.title() == "wd", b.title()
        b.find("#go").click()
        assert b.wait_for("document.getElementById('out').textContent == 'after'", what="#out") is True
        assert b.find("#out").text() == "after"
        b.screenshot("/tmp/wd-helper/x.png")
        b.full_screenshot("/tmp/wd-helper/full.png")
        for p in ("/tmp/wd-helper/x.png", "/tmp/wd-helper/full.png"):
            with open(p, "rb") as f:
                assert f.read(8) == b"\x89PNG\r\n\x1a\n", p
        reqs = b.network_requests()
        for want in ("/", "/app.js", "/data.json"):
            assert base + want in reqs, (want, reqs)
        hosts = {urllib.parse.urlsplit(u).hostname for u in reqs if not u.startswith("data:")}
        assert hosts == {"127.0.0.1"}, reqs
        assert b.console_errors() == [], b.console_errors()
        m.get(base + "/")
        assert m.execute("return window.innerWidth") == 390
        assert "Android" in m.execute("return navigator.userAgent")
        assert b._tmp != m._tmp and b._base != m._base
    server.shutdown()
    print("webdriver self-test: ok")
