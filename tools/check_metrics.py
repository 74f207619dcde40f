#!/usr/bin/env python3
"""Parses a Tributary coordinator's /metrics with Prometheus' own Python parser and checks it.

Usage: tools/check_metrics.py URL_OR_FILE [--ca RUN-CA.PEM]   (- for standard input)

Every family a coordinator exports must parse, with its type and HELP text, and the per-worker
families must carry a `worker` label. Prints one JSON object on stdout: each family's type and
samples ({"name{labels}": value}). Exits 1 with the reason when the text does not parse or a
family is missing or of the wrong type. An https URL is trusted through --ca, the run's authority
(run-ca.pem), alone; the name checked is the coordinator's, coordinator.tributary, as a Prometheus
scrape config would set it (tls_config: ca_file, server_name).
"""
import json
import socket
import ssl
import sys
import urllib.parse
import urllib.request

from prometheus_client.parser import text_string_to_metric_families

EXPECTED = {
    "tributary_workers": "gauge",
    "tributary_expected_workers": "gauge",
    "tributary_ring_epoch": "gauge",
    "tributary_run_finished": "gauge",
    "tributary_events": "counter",
    "tributary_bytes_sent": "counter",
    "tributary_bytes_received": "counter",
    "tributary_tokens": "counter",
    "tributary_steps": "counter",
    "tributary_compute_seconds": "counter",
    "tributary_wait_seconds": "counter",
    "tributary_worker_round": "gauge",
    "tributary_training_loss": "gauge",
    "tributary_worker_seconds_since_seen": "gauge",
    "tributary_worker_admission": "gauge",
    "tributary_round_duration_seconds": "histogram",
    "tributary_allreduce_duration_seconds": "histogram",
}
PER_WORKER = [name for name in EXPECTED if name not in
              ("tributary_workers", "tributary_expected_workers", "tributary_ring_epoch", "tributary_run_finished", "tributary_events")]


def fetch_https(url, ca):
    """GET over TLS trusting only `ca`, checking the coordinator's name rather than the address."""
    parsed = urllib.parse.urlsplit(url)
    context = ssl.create_default_context(cafile=ca)
    with socket.create_connection((parsed.hostname, parsed.port or 443), timeout=10) as raw:
        with context.wrap_socket(raw, server_hostname="coordinator.tributary") as tls:
            request = f"GET {parsed.path or '/'} HTTP/1.1\r\nHost: {parsed.netloc}\r\nConnection: close\r\n\r\n"
            tls.sendall(request.encode())
            chunks = []
            while chunk := tls.recv(65536):
                chunks.append(chunk)
    head, _, body = b"".join(chunks).partition(b"\r\n\r\n")
    if not head.startswith(b"HTTP/1.1 200"):
        raise SystemExit(f"{url}: {head.splitlines()[0].decode(errors='replace') if head else 'no answer'}")
    if b"transfer-encoding: chunked" in head.lower():
        body = dechunk(body)
    return body.decode("utf-8")


def dechunk(body):
    out = bytearray()
    while body:
        size_line, _, body = body.partition(b"\r\n")
        size = int(size_line.split(b";")[0], 16)
        if size == 0:
            break
        out += body[:size]
        body = body[size + 2:]
    return bytes(out)


def main():
    args = sys.argv[1:]
    ca = None
    if len(args) == 3 and args[1] == "--ca":
        ca = args[2]
        args = args[:1]
    if len(args) != 1:
        print(__doc__, file=sys.stderr)
        return 2
    source = args[0]
    if source == "-":
        text = sys.stdin.read()
    elif source.startswith("https://"):
        text = fetch_https(source, ca)
    elif source.startswith("http://"):
        text = urllib.request.urlopen(source, timeout=10).read().decode("utf-8")
    else:
        with open(source, encoding="utf-8") as f:
            text = f.read()
    try:
        families = {f.name: f for f in text_string_to_metric_families(text)}
    except ValueError as error:
        print(f"/metrics does not parse as Prometheus text: {error}", file=sys.stderr)
        return 1
    problems = []
    for name, kind in EXPECTED.items():
        family = families.get(name)
        if family is None:
            problems.append(f"{name} is missing")
        elif family.type != kind:
            problems.append(f"{name} is a {family.type}, expected a {kind}")
        elif not family.documentation:
            problems.append(f"{name} has no HELP text")
        elif name in PER_WORKER and not all("worker" in s.labels for s in family.samples):
            problems.append(f"{name} has samples without a worker label")
    if problems:
        print("; ".join(problems), file=sys.stderr)
        return 1
    summary = {name: {"type": f.type, "samples": {
        s.name + "{" + ",".join(f'{k}="{v}"' for k, v in sorted(s.labels.items())) + "}": s.value for s in f.samples}}
        for name, f in families.items()}
    print(json.dumps(summary, sort_keys=True))
    return 0


if __name__ == "__main__":
    sys.exit(main())
