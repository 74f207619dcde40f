#!/usr/bin/env python3
"""Parses a Tributary coordinator's /metrics with Prometheus' own Python parser and checks it.

Usage: tools/check_metrics.py URL_OR_FILE   (- for standard input)

Every family a coordinator exports must parse, with its type and HELP text, and the per-worker
families must carry a `worker` label. Prints one JSON object on stdout: each family's type and
samples ({"name{labels}": value}). Exits 1 with the reason when the text does not parse or a
family is missing or of the wrong type.
"""
import json
import sys
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


def main():
    if len(sys.argv) != 2:
        print(__doc__, file=sys.stderr)
        return 2
    source = sys.argv[1]
    if source == "-":
        text = sys.stdin.read()
    elif source.startswith("http://") or source.startswith("https://"):
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
