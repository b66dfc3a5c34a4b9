#!/usr/bin/env python3
"""The documents an admin configures from agree with the code (#21): every key the daemon knows
(crmbridged -p) is in the sample configuration under its section and in crmbridge.conf(5); every
secret's systemd credential is named in the sample and in the unit; the unit runs the configured
binaries and reads the configured file; the shipped Prometheus rules and scrape job pass promtool
and name only metrics the daemon exports; the man pages render without groff warnings."""
import json
import os
import re
import shutil
import subprocess
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import Daemon, Redis, done, ok, workdir, write_config  # noqa: E402

SRC = os.environ.get("TOP_SRCDIR") or "."
BUILD = os.environ.get("TOP_BUILDDIR") or "."
BIN = os.environ.get("CRMBRIDGED") or os.path.join(BUILD, "crmbridged")


def src(path):
    return open(os.path.join(SRC, path), encoding="utf-8").read()


wd = workdir()
conf = os.path.join(wd, "c.conf")
write_config(conf, "[server]\nstate_dir = %s\n" % wd)
r = subprocess.run([BIN, "-p", "-f", conf], capture_output=True, text=True)
keys = json.loads(r.stdout)
ok(len(keys) >= 15 and all(isinstance(v, dict) for v in keys.values()), "crmbridged -p lists the sections",
   list(keys))

# ---- the sample configuration: every key, in its section ----
sample = {}
cur = None
for line in src("etc/crmbridge.conf.in").splitlines():
    m = re.match(r"^\[(\w+)\]", line)
    if m:
        cur = m.group(1)
        sample.setdefault(cur, set())
        continue
    m = re.match(r"^#?([a-z_0-9]+) =", line)
    if m and cur:
        sample[cur].add(m.group(1))
missing = [s + "." + k for s, kv in keys.items() for k in kv if k not in sample.get(s, set())]
ok(not missing, "the sample configuration shows every key the daemon knows, in its section", missing)
unknown = [s + "." + k for s, kv in sample.items() for k in kv if k not in keys.get(s, {})]
ok(not unknown, "and no key the daemon does not know", unknown)

# ---- crmbridge.conf(5): every key under its section's heading ----
man = open(os.path.join(BUILD, "man/crmbridge.conf.5"), encoding="utf-8").read()
parts = re.split(r"^\.SS \[(\w+)\]\s*$", man, flags=re.M)
man_keys = {parts[i]: {k for ks in re.findall(r"^\.B ([a-z_0-9]+(?:, [a-z_0-9]+)*)\s*$", parts[i + 1], flags=re.M)
                        for k in ks.split(", ")}
            for i in range(1, len(parts) - 1, 2)}
missing = [s + "." + k for s, kv in keys.items() for k in kv if k not in man_keys.get(s, set())]
ok(not missing, "crmbridge.conf(5) documents every key, in its section", missing)
ok("LL" not in re.sub(r"[A-Z]{3,}", "", man) and "2147483647LL" not in man, "no C literal suffix in the ranges")

# ---- secrets: each has a credential, named in the sample and in the unit ----
creds = re.findall(r'\{"(\w+)", "(\w+)", (?:"\w+"|NULL), "(\w+)", K_\w+, (K_SECRET|K_URLCRED)',
                   src("daemon/conf.c"))
ok(len(creds) >= 8, "the configuration's secrets have credential names", creds)
unit_in = src("systemd/crmbridged.service.in")
sample_text = src("etc/crmbridge.conf.in")
for sec, key, cred, _ in creds:
    ok("credential " + cred in sample_text, "the sample names the credential for %s.%s (%s)" % (sec, key, cred))
    ok(re.search(r"^#?LoadCredentialEncrypted=%s$" % cred, unit_in, flags=re.M),
       "the unit lists LoadCredentialEncrypted=%s" % cred)
deploy = src("docs/DEPLOY.md")
for sec, key, cred, _ in creds:
    ok(cred in deploy, "docs/DEPLOY.md's credentials cover %s" % cred)

# ---- the unit as built: the configured paths ----
mk = open(os.path.join(BUILD, "Makefile")).read()
var = {k: v for k, v in re.findall(r"^(\w+) = (.*)$", mk, flags=re.M)}


def expand(v):
    for _ in range(5):
        v = re.sub(r"\$\{(\w+)\}|\$\((\w+)\)", lambda m: var.get(m.group(1) or m.group(2), ""), v)
    return v


unit = open(os.path.join(BUILD, "systemd/crmbridged.service")).read()
ok("ExecStart=%s/crmbridged\n" % expand(var["sbindir"]) in unit, "the unit runs crmbridged from the configured sbindir",
   expand(var["sbindir"]))
ok("CRMBRIDGE_CONFIG=%s/crmbridge/crmbridge.conf" % expand(var["sysconfdir"]) in unit,
   "the unit reads the configuration from the configured sysconfdir", expand(var["sysconfdir"]))
ok(not re.search(r"@\w+@", unit), "no placeholder left in the unit", re.findall(r"@\w+@", unit))
for page in ("man/crmbridged.8", "man/crmbridge.conf.5", "man/crmbridgectl.1"):
    text = open(os.path.join(BUILD, page), encoding="utf-8").read()
    ok(not re.search(r"@\w+@", text) and "%s/crmbridge/crmbridge.conf" % expand(var["sysconfdir"]) in text,
       "%s names the configured configuration file" % page, re.findall(r"@\w+@", text))
ok("%s/lib/crmbridge" % expand(var["localstatedir"]) in man, "crmbridge.conf(5) gives the configured state directory")

# ---- Prometheus: promtool accepts the rules and the scrape job; every metric they name exists ----
promtool = shutil.which("promtool")
rules = os.path.join(SRC, "etc/prometheus/crmbridge-alerts.yml")
scrape = os.path.join(SRC, "etc/prometheus/crmbridge-scrape.yml")
if promtool:
    r = subprocess.run([promtool, "check", "rules", rules], capture_output=True, text=True)
    ok(r.returncode == 0, "promtool check rules etc/prometheus/crmbridge-alerts.yml", r.stdout + r.stderr)
    cfg = os.path.join(wd, "prometheus.yml")
    with open(cfg, "w") as f:
        f.write("rule_files:\n  - %s\n" % rules + open(scrape).read())
    r = subprocess.run([promtool, "check", "config", cfg], capture_output=True, text=True)
    ok(r.returncode == 0, "promtool check config with the scrape job and the rules", r.stdout + r.stderr)
    # The alerts fire on what they should, and not on an unconfigured Odoo.
    # promtool compares annotations too: the test runs on a copy without them (check rules saw them above).
    bare = os.path.join(wd, "alerts-bare.yml")
    with open(bare, "w") as f:
        skip = None
        for line in open(rules):
            ind = len(line) - len(line.lstrip())
            if skip is not None and (not line.strip() or ind > skip):
                continue
            skip = ind if line.strip() == "annotations:" else None
            if skip is None:
                f.write(line)
    tests = os.path.join(wd, "alerts-test.yml")
    with open(tests, "w") as f:
        f.write('''rule_files: [%s]
evaluation_interval: 1m
tests:
  - interval: 1m
    input_series:
      - series: 'crmbridge_redis_up{instance="a",job="crmbridge"}'
        values: '1 1 0 0 0 0'
      - series: 'crmbridge_odoo_up{instance="a",job="crmbridge"}'
        values: '0x40'
      - series: 'crmbridge_queue_depth{instance="a",job="crmbridge",queue="lead_writes"}'
        values: '0x40'
      - series: 'crmbridge_odoo_up{instance="b",job="crmbridge"}'
        values: '0x40'
      - series: 'crmbridge_queue_depth{instance="b",job="crmbridge",queue="lead_writes"}'
        values: '3x40'
      - series: 'crmbridge_spool_depth{instance="a",job="crmbridge"}'
        values: '0x40'
    alert_rule_test:
      - eval_time: 5m
        alertname: CrmbridgeRedisDown
        exp_alerts:
          - exp_labels: {severity: critical, instance: a, job: crmbridge}
      - eval_time: 30m
        alertname: CrmbridgeOdooUnreachable
        exp_alerts:
          - exp_labels: {severity: warning, instance: b, job: crmbridge, queue: lead_writes}
''' % json.dumps(bare))
    r = subprocess.run([promtool, "test", "rules", tests], capture_output=True, text=True)
    ok(r.returncode == 0, "promtool test rules: Redis down fires; Odoo down fires only with lead writes waiting",
       r.stdout + r.stderr)
else:
    ok(False, "promtool is installed (Debian's prometheus; ./dev.sh test installs it)")

redis = Redis(wd)
redis.start()
write_config(conf, "[server]\nlisten = 127.0.0.1:0\nstate_dir = %s\nmetrics_public = yes\n"
             "[redis]\nurl = redis://127.0.0.1:%d/0\n[gemini]\napi_key = AIzaDocsTest\n"
             "[twilio]\naccount_sid = AC%s\nauth_token = docs-token-0123456789\n"
             "whatsapp_from = whatsapp:+14155238886\n" % (wd, redis.port, "0" * 32))
d = Daemon(wd, conf)
ok(d.wait_notify("READY=1", 15) is not None, "the daemon starts (with a model and Twilio, so all families show)")
metrics = d.request("GET", "/metrics")[2].decode()
exported = set(re.findall(r"^# TYPE (\w+)", metrics, flags=re.M))
named = set(re.findall(r"\b(crmbridge_\w+)", open(rules).read()))
ok(named and named <= exported, "every metric the alert rules use is one the daemon exports", named - exported)
d.signal(15)
ok(d.wait(20) == 0, "and stops cleanly")
d.kill()
redis.stop()

# ---- the man pages render without warnings ----
if shutil.which("man"):
    for page in ("man/crmbridged.8", "man/crmbridge.conf.5", "man/crmbridgectl.1"):
        r = subprocess.run(["man", "--warnings", "-E", "UTF-8", "-l", os.path.join(BUILD, page)],
                           capture_output=True, text=True, env=dict(os.environ, MANWIDTH="80", LC_ALL="C.UTF-8"))
        # Filling warnings depend on the configured paths' length (distcheck's are long); the rest are mistakes.
        warn = [w for w in r.stderr.splitlines() if w.strip() and not re.search(r"cannot adjust|can't break", w)]
        ok(r.returncode == 0 and not warn, "%s renders without groff warnings" % page, "\n".join(warn)[:500])
done()
