#!/usr/bin/env python3
"""Loads Tributary's live dashboard in headless Chromium and reports what its DOM shows.

Usage: tools/dashboard_check.py URL --out DIR [--wait SECONDS] [--chromium PATH] [--ca RUN-CA.PEM]

Drives Chromium over the DevTools protocol (websocket-client): opens URL at 1280x800 with every
non-loopback request sent to a dead proxy (the page must work offline), reads the DOM once the
first live snapshot arrived and again once the byte counters changed, takes screenshots at
1280x800 and at a phone's 390x844, presses Tab once (the first stop must be the skip link) and
checks that the phone-sized page does not scroll sideways. Prints one JSON object on stdout:
{"snapshots": [...], "requests": [...], "failed": [...], "firstTabStop": ..., "phoneOverflow": ...,
"screenshots": [...]}. Exits 2 when the browser cannot be driven; the caller judges the rest.
An https URL is trusted through --ca, the run's authority (run-ca.pem): Chromium accepts a chain
that holds a certificate with that public key (its SPKI hash), and no other.
"""
import argparse
import base64
import json
import os
import re
import subprocess
import sys
import tempfile
import time
import urllib.request

import websocket  # websocket-client

READ_DOM = r"""JSON.stringify({
  members: [...document.querySelectorAll('#members tbody tr')].map(r => ({
    name: r.dataset.worker, state: r.cells[1].textContent,
    sent: r.querySelector('.bytes-sent').textContent, loss: r.querySelector('.loss').textContent})),
  validationLoss: document.getElementById('validation-loss').textContent,
  bytesSent: document.getElementById('bytes-sent').textContent,
  bytesReceived: document.getElementById('bytes-received').textContent,
  round: document.getElementById('round').textContent,
  phase: document.getElementById('phase').textContent,
  ring: [...document.querySelectorAll('#ring li')].map(li => li.textContent),
  charts: [...document.querySelectorAll('.charts figure svg')].length,
  events: document.querySelectorAll('#events tbody tr').length,
  updates: Number(document.getElementById('updates').dataset.count),
  connection: document.getElementById('connection').textContent})"""


def spki_hash(pem_file):
    """Base64 SHA-256 of a certificate's SubjectPublicKeyInfo, as Chromium's SPKI list takes it."""
    import hashlib
    from cryptography import x509
    from cryptography.hazmat.primitives import serialization
    with open(pem_file, "rb") as f:
        certificate = x509.load_pem_x509_certificate(f.read())
    spki = certificate.public_key().public_bytes(serialization.Encoding.DER,
                                                 serialization.PublicFormat.SubjectPublicKeyInfo)
    return base64.b64encode(hashlib.sha256(spki).digest()).decode()


class Browser:
    def __init__(self, chromium, profile, ca=None):
        trust = [f"--ignore-certificate-errors-spki-list={spki_hash(ca)}"] if ca else []
        self.process = subprocess.Popen(
            [chromium, "--headless=new", "--no-sandbox", "--disable-gpu", "--no-first-run",
             "--remote-debugging-port=0", f"--user-data-dir={profile}", *trust,
             # No network but loopback: anything else goes to a proxy that is not there.
             "--proxy-server=127.0.0.1:9", "--host-resolver-rules=MAP * ~NOTFOUND , EXCLUDE 127.0.0.1",
             "about:blank"],
            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, start_new_session=True)
        endpoint = None
        deadline = time.time() + 30
        while time.time() < deadline and endpoint is None:
            line = self.process.stderr.readline()
            if not line and self.process.poll() is not None:
                break
            match = re.search(r"DevTools listening on (ws://\S+)", line)
            if match:
                endpoint = match.group(1)
        if endpoint is None:
            raise RuntimeError("chromium did not open its DevTools endpoint")
        port = re.search(r":(\d+)/", endpoint).group(1)
        targets = json.load(urllib.request.urlopen(f"http://127.0.0.1:{port}/json/list", timeout=10))
        page = next(t for t in targets if t["type"] == "page")
        self.socket = websocket.create_connection(page["webSocketDebuggerUrl"], timeout=30, suppress_origin=True)
        self.next_id = 0
        self.events = []

    def call(self, method, **params):
        self.next_id += 1
        self.socket.send(json.dumps({"id": self.next_id, "method": method, "params": params}))
        while True:
            message = json.loads(self.socket.recv())
            if message.get("id") == self.next_id:
                if "error" in message:
                    raise RuntimeError(f"{method}: {message['error']}")
                return message.get("result", {})
            self.events.append(message)

    def evaluate(self, expression):
        result = self.call("Runtime.evaluate", expression=expression, returnByValue=True)
        return result.get("result", {}).get("value")

    def screenshot(self, path, width, height, mobile):
        self.call("Emulation.setDeviceMetricsOverride", width=width, height=height, deviceScaleFactor=1, mobile=mobile)
        time.sleep(0.5)
        data = self.call("Page.captureScreenshot", format="png")["data"]
        with open(path, "wb") as f:
            f.write(base64.b64decode(data))
        return path

    def close(self):
        try:
            self.call("Browser.close")
            self.process.wait(timeout=10)
        except Exception:  # noqa: BLE001 - whatever went wrong, the browser must go
            pass
        finally:
            # Chromium's helpers live in its process group: none may outlive the check.
            try:
                os.killpg(self.process.pid, 9)
            except ProcessLookupError:
                pass
            self.process.wait()
            self.socket.close()


def wait_for(browser, condition, seconds):
    deadline = time.time() + seconds
    state = None
    while time.time() < deadline:
        state = json.loads(browser.evaluate(READ_DOM) or "null")
        if state and condition(state):
            return state
        time.sleep(0.3)
    return state


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("url")
    parser.add_argument("--out", required=True)
    parser.add_argument("--wait", type=float, default=30)
    parser.add_argument("--chromium", default=os.environ.get("CHROMIUM", "chromium"))
    parser.add_argument("--ca", help="the run's authority certificate, for an https URL")
    args = parser.parse_args()
    os.makedirs(args.out, exist_ok=True)
    with tempfile.TemporaryDirectory(ignore_cleanup_errors=True) as profile:
        try:
            browser = Browser(args.chromium, profile, args.ca)
        except Exception as error:  # noqa: BLE001 - any failure to start is reported the same way
            print(f"cannot drive chromium: {error}", file=sys.stderr)
            return 2
        try:
            browser.call("Network.enable")
            browser.call("Page.enable")
            browser.call("Emulation.setDeviceMetricsOverride", width=1280, height=800, deviceScaleFactor=1, mobile=False)
            browser.call("Page.navigate", url=args.url)
            # The first look once every member reported a round (it has a loss).
            first = wait_for(browser, lambda s: s["updates"] >= 1 and s["members"]
                             and all(m["loss"] != "\u2013" for m in s["members"]), args.wait)
            shots = [browser.screenshot(os.path.join(args.out, "dashboard-1280x800.png"), 1280, 800, False)]
            second = wait_for(browser, lambda s: s["updates"] > first["updates"] and s["bytesSent"] != first["bytesSent"],
                              args.wait)
            shots.append(browser.screenshot(os.path.join(args.out, "dashboard-phone-390x844.png"), 390, 844, True))
            overflow = browser.evaluate("document.documentElement.scrollWidth > window.innerWidth")
            browser.call("Input.dispatchKeyEvent", type="keyDown", key="Tab", code="Tab", windowsVirtualKeyCode=9)
            browser.call("Input.dispatchKeyEvent", type="keyUp", key="Tab", code="Tab", windowsVirtualKeyCode=9)
            first_stop = browser.evaluate("document.activeElement.className + ' ' + document.activeElement.textContent")
            browser.call("Network.disable")
            requests = [e["params"]["request"]["url"] for e in browser.events if e.get("method") == "Network.requestWillBeSent"]
            failed = [e["params"].get("errorText") for e in browser.events if e.get("method") == "Network.loadingFailed"]
            print(json.dumps({"snapshots": [first, second], "requests": requests, "failed": failed,
                              "firstTabStop": first_stop, "phoneOverflow": overflow, "screenshots": shots}))
        finally:
            browser.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
