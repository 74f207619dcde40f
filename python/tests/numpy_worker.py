"""A NumPy engine in a Tributary run, for the engine link's tests: each inner step is a step of gradient
descent on 0.5·|x - target|², the target drawn from --seed. It trains what a DiLoCo worker trains (a flat
vector in the run's GPT-2 layout) without any deep-learning library, and prints one JSON line at the end."""

import argparse
import json
import os
import sys
import time

import numpy as np

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
from tributary import EngineLink, TributaryError, gpt2_layout, layout_hash  # noqa: E402


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--join", required=True)
    parser.add_argument("--token-file", required=True)
    parser.add_argument("--name", required=True)
    parser.add_argument("--model", required=True, help="VOCAB,CONTEXT,LAYERS,CHANNELS")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--die-after", type=int, help="exit abruptly after training this many rounds")
    parser.add_argument("--step-seconds", type=float, default=0.0, help="make each step take this much longer (a slower device)")
    parser.add_argument("worker_args", nargs="*", help="more tributary worker flags (after --)")
    args = parser.parse_args()
    layout = gpt2_layout(*[int(x) for x in args.model.split(",")])
    target = np.random.default_rng(args.seed).standard_normal(sum(int(np.prod(s)) for _, s in layout)).astype(np.float32)
    try:
        link = EngineLink(layout, join=args.join, token_file=args.token_file, name=args.name,
                          worker_args=args.worker_args, engine=f"numpy {np.__version__}")
    except TributaryError as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    rounds = 0
    try:
        while (r := link.next_round()) is not None:
            start = time.perf_counter()
            x = link.parameters
            losses = []
            while not r.is_over(len(losses), time.perf_counter() - start):
                difference = x - target
                losses.append(float(0.5 * np.mean(difference * difference)))
                x -= 0.05 * difference
                time.sleep(args.step_seconds)
            link.trained(len(losses), float(np.mean(losses)), time.perf_counter() - start)
            rounds += 1
            if args.die_after is not None and rounds >= args.die_after:
                os._exit(3)
    except TributaryError as error:
        print(f"error: {error}", file=sys.stderr)
        link.close()
        return 1
    status = link.close()
    print(json.dumps({"rounds": rounds, "status": status, "layoutHash": layout_hash(layout),
                      "report": link.final_report}))
    return 0 if status == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
