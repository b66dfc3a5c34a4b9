"""Helpers for crmbridge's integration tests: TAP output, a private
redis-server, the daemon under test with a NOTIFY_SOCKET the test owns,
and a small HTTP client. Standard library only."""

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import http.client

_n = 0
_failed = 0


def ok(cond, name, diag=None):
    global _n, _failed
    _n += 1
    print(("ok" if cond else "not ok") + " %d - %s" % (_n, name), flush=True)
    if not cond:
        _failed += 1
        if diag is not None:
            for line in str(diag).splitlines()[-30:]:
                print("#   " + line)
    return cond


def is_eq(got, want, name):
    return ok(got == want, name, "got %r, want %r" % (got, want))


def done():
    print("1..%d" % _n, flush=True)
    sys.exit(0 if _failed == 0 else 1)


def skip_all(why):
    print("1..0 # SKIP " + why, flush=True)
    sys.exit(0)


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def wait_for(pred, timeout, step=0.05):
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        v = pred()
        if v:
            return v
        time.sleep(step)
    return pred()


class Redis:
    """A redis-server of our own on a free port in a temporary directory."""

    def __init__(self, workdir, port=None, aof=False, password=None, args=(), name="redis"):
        self.aof = aof
        self.args = list(args)
        self.password = password
        self.bin = os.environ.get("REDIS_SERVER") or shutil.which("redis-server") or "/usr/bin/redis-server"
        self.dir = os.path.join(workdir, name)
        os.makedirs(self.dir, exist_ok=True)
        self.port = port or free_port()
        self.proc = None

    def start(self):
        self.proc = subprocess.Popen(
            [self.bin, "--port", str(self.port), "--bind", "127.0.0.1", "--dir", self.dir,
             "--save", "", "--logfile", os.path.join(self.dir, "redis.log")]
            + (["--appendonly", "yes", "--appendfsync", "always"] if self.aof else ["--appendonly", "no"])
            + (["--requirepass", self.password] if self.password else []) + self.args,
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        if not wait_for(self.ping, 10):
            raise RuntimeError("redis-server did not start")

    def ping(self):
        try:
            with socket.create_connection(("127.0.0.1", self.port), timeout=0.5) as s:
                s.sendall(b"PING\r\n")
                got = s.recv(64)
                return got.startswith(b"+PONG") or (self.password is not None and got.startswith(b"-NOAUTH"))
        except OSError:
            return False

    def stop(self):
        if self.proc is not None:
            self.proc.kill()
            self.proc.wait()
            self.proc = None

    def cli(self, *args):
        """redis-cli's answer to one command, as text (raw output: one value a line)."""
        cmd = ["redis-cli", "--raw", "-p", str(self.port)] + (["--no-auth-warning", "-a", self.password]
                                                               if self.password else []) + list(args)
        return subprocess.run(cmd, capture_output=True, text=True, timeout=30).stdout

    @property
    def url(self):
        if self.password:
            return "redis://:%s@127.0.0.1:%d/0" % (self.password, self.port)
        return "redis://127.0.0.1:%d/0" % self.port


class Daemon:
    """crmbridged started with a NOTIFY_SOCKET that this object reads."""

    _serial = 0

    def __init__(self, workdir, config_path=None, env=None, args=(), watchdog_usec=None):
        self.workdir = workdir
        self.bin = os.environ.get("CRMBRIDGED") or "crmbridged"
        # Unique in the work directory, where an earlier daemon's socket file may remain (a port number that
        # free_port() gave before could come again).
        Daemon._serial += 1
        self.notify_path = os.path.join(workdir, "notify-%d-%d.sock" % (os.getpid(), Daemon._serial))
        self.notify = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.notify.bind(self.notify_path)
        self.messages = []
        self.cond = threading.Condition()
        self.log_path = os.path.join(workdir, "daemon-%d-%d.log" % (os.getpid(), Daemon._serial))
        e = {k: v for k, v in os.environ.items()
             if not k.startswith(("CRMBRIDGE_", "TWILIO_", "ODOO_", "GEMINI_", "GOOGLE_", "REDIS_URL"))}
        e["NOTIFY_SOCKET"] = self.notify_path
        e.setdefault("CRMBRIDGE_STATE_DIR", os.path.join(workdir, "state"))
        if watchdog_usec:
            e["WATCHDOG_USEC"] = str(watchdog_usec)
        if env:
            e.update(env)
        self.state_dir = e["CRMBRIDGE_STATE_DIR"]
        cmd = [self.bin] + (["-f", config_path] if config_path else []) + list(args)
        self.log = open(self.log_path, "wb")
        self.proc = subprocess.Popen(cmd, env=e, stdout=self.log, stderr=self.log)
        self.port = None
        self.reader = threading.Thread(target=self._read_notify, daemon=True)
        self.reader.start()

    def _read_notify(self):
        # systemd drains the socket at all times; so must we, or sd_notify blocks the daemon.
        while True:
            try:
                data = self.notify.recv(4096).decode()
            except OSError:
                return
            if not data:
                return
            with self.cond:
                for line in data.splitlines():
                    self.messages.append(line)
                    if line.startswith("STATUS=Listening on "):
                        addr = line.split(" ")[2].rstrip(";")
                        self.port = int(addr.rsplit(":", 1)[1])
                self.cond.notify_all()

    def poll_notify(self, timeout):
        """Waits timeout seconds and returns the messages that arrived meanwhile."""
        with self.cond:
            start = len(self.messages)
        time.sleep(timeout)
        with self.cond:
            return self.messages[start:]

    def wait_notify(self, prefix, timeout):
        """Waits for a message starting with prefix, already received or new; returns it or None."""
        end = time.monotonic() + timeout
        with self.cond:
            while True:
                for line in self.messages:
                    if line.startswith(prefix):
                        return line
                left = end - time.monotonic()
                if left <= 0 or self.proc.poll() is not None:
                    return None
                self.cond.wait(min(left, 0.2))

    def seen(self, prefix):
        with self.cond:
            return any(m.startswith(prefix) for m in self.messages)

    def clear(self):
        with self.cond:
            self.messages.clear()

    def count(self, line):
        with self.cond:
            return sum(1 for m in self.messages if m == line)

    def logtext(self):
        self.log.flush()
        with open(self.log_path, "rb") as f:
            return f.read().decode(errors="replace")

    def generated_token(self):
        """The admin token the daemon made in its state directory (when none is configured), or None."""
        try:
            with open(os.path.join(self.state_dir, "admin.token")) as f:
                return f.read().strip()
        except OSError:
            return None

    def request(self, method, path, body=None, headers=None, timeout=5, port=None):
        if headers is None:
            # Tests that are not about authentication use the token the daemon generated, as crmbridgectl does.
            tok = self.generated_token()
            headers = {"Authorization": "Bearer " + tok} if tok else {}
        c = http.client.HTTPConnection("127.0.0.1", port or self.port, timeout=timeout)
        c.request(method, path, body=body, headers=headers)
        r = c.getresponse()
        data = r.read()
        c.close()
        return r.status, dict(r.getheaders()), data

    def get_json(self, path, headers=None):
        st, hd, data = self.request("GET", path, headers=headers)
        try:
            return st, json.loads(data)
        except ValueError:
            return st, None

    def signal(self, sig):
        self.proc.send_signal(sig)

    def wait(self, timeout):
        try:
            return self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            return None

    def kill(self):
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()
        self.notify.close()
        self.log.close()


def workdir():
    d = tempfile.mkdtemp(prefix="crmb-it-")
    return d


def write_config(path, text, mode=0o600):
    with open(path, "w") as f:
        f.write(text)
    os.chmod(path, mode)


def resp(port, *args, timeout=5):
    """Sends one command to Redis on 127.0.0.1:port and returns the decoded reply."""
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as s:
        out = b"*%d\r\n" % len(args)
        for a in args:
            a = a if isinstance(a, bytes) else str(a).encode()
            out += b"$%d\r\n%s\r\n" % (len(a), a)
        s.sendall(out)
        f = s.makefile("rb")
        return _read_reply(f)


def _read_reply(f):
    line = f.readline()
    if not line:
        raise ConnectionError("redis closed the connection")
    t, rest = line[:1], line[1:-2]
    if t == b"+":
        return rest.decode()
    if t == b"-":
        raise RuntimeError(rest.decode())
    if t == b":":
        return int(rest)
    if t == b"$":
        n = int(rest)
        if n < 0:
            return None
        data = f.read(n + 2)[:-2]
        return data
    if t == b"*":
        n = int(rest)
        return None if n < 0 else [_read_reply(f) for _ in range(n)]
    raise RuntimeError("bad reply %r" % line)


def sign(token, url, params):
    """Twilio's X-Twilio-Signature for url and a list of (name, value) pairs."""
    import base64
    import hashlib
    import hmac
    data = url + "".join(k + v for k, v in sorted(params))
    return base64.b64encode(hmac.new(token.encode(), data.encode(), hashlib.sha1).digest()).decode()


def form(params):
    import urllib.parse
    return urllib.parse.urlencode(params)


def start_fake(name, *args):
    """Starts tests/fakes/NAME with args; returns (process, port) once it listens."""
    top = os.environ.get("TOP_SRCDIR") or os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    p = subprocess.Popen([sys.executable, os.path.join(top, "tests", "fakes", name)] + list(args),
                         stdout=subprocess.PIPE, text=True)
    return p, int(p.stdout.readline().split()[1])


def control(port, obj):
    """POSTs a double's /_control knobs; returns its JSON answer (the Odoo double's {"user": ...} answers the uid)."""
    import urllib.request
    raw = urllib.request.urlopen("http://127.0.0.1:%d/_control" % port, json.dumps(obj).encode(), timeout=30).read()
    try:
        return json.loads(raw)
    except ValueError:
        return None


def get(port, path):
    """GETs a double's JSON (/_log, /_leads, /_stats)."""
    import urllib.request
    return json.loads(urllib.request.urlopen("http://127.0.0.1:%d%s" % (port, path), timeout=60).read())


def post_whatsapp(port, token, public, phone, body, msid):
    """Posts one inbound WhatsApp message to the daemon on port, signed as Twilio signs it; returns the status."""
    import http.client
    p = [("MessageSid", msid), ("From", "whatsapp:" + phone), ("To", "whatsapp:+14155238886"), ("Body", body),
         ("NumMedia", "0"), ("ProfileName", "Cliente")]
    c = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    c.request("POST", "/api/webhook/whatsapp", body=form(p).encode(),
              headers={"Content-Type": "application/x-www-form-urlencoded",
                       "X-Twilio-Signature": sign(token, public + "/api/webhook/whatsapp", p)})
    r = c.getresponse()
    r.read()
    c.close()
    return r.status


def twilio_replies(tport, phone):
    """The bodies the Twilio double accepted (201) for phone, in order."""
    return [e["form"]["Body"] for e in get(tport, "/_log")
            if e.get("answer") == 201 and e["form"]["To"] == "whatsapp:" + phone]
