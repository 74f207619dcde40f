"""Train Hugging Face's GPT2LMHeadModel from PyTorch in a Tributary run, beside native workers.

    pip install ./python torch transformers
    tributary coordinator --config configs/fortunes-mixed.yaml --token-file token --workers 2 --out runs/mixed ...
    tributary worker --join HOST:PORT --token-file token --ca runs/mixed/run-ca.pem --name native &
    python3 examples/pytorch_gpt2.py --join HOST:PORT --token-file token --name torch-0 -- --ca runs/mixed/run-ca.pem

The run's config (model, batch, optimizer, prepared data) comes from the coordinator: the model is built
from it, starts from the run's shared parameters, and trains the inner steps of each DiLoCo round on
whatever device torch uses (--device); `tributary worker` does the rest. Tokens come from the run's
prepared shards (`tributary data prepare`), read at random offsets with this worker's own seed.
"""

import argparse
import json
import os
import sys
import time

import numpy as np
import torch

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "python"))
from tributary import EngineLink, TributaryError  # noqa: E402
from tributary.torch_diloco import DiLoCo, gpt2_config, run_gpt2_layout  # noqa: E402


def train_tokens(run_config: dict, base: str) -> np.ndarray:
    """The run's prepared train tokens (TRIBTOK1 shards listed in the folder's manifest.json)."""
    prepared = (run_config.get("data") or {}).get("prepared")
    if not prepared:
        raise TributaryError("the run trains on tributary's synthetic source (no data.prepared): this example needs "
                             "shards from `tributary data prepare` in the coordinator's config")
    folder = prepared if os.path.isabs(prepared) else os.path.join(base, prepared)
    with open(os.path.join(folder, "manifest.json")) as f:
        manifest = json.load(f)
    parts = []
    for shard in manifest["shards"]:
        if shard["split"] != "train":
            continue
        raw = np.fromfile(os.path.join(folder, shard["file"]), dtype=np.uint8)
        if raw[:8].tobytes() != b"TRIBTOK1":
            raise TributaryError(f"{shard['file']} is not a token shard")
        width = int(raw[12:16].view("<u4")[0])
        count = int(raw[16:24].view("<u8")[0])
        parts.append(raw[24:24 + count * width].view("<u2" if width == 2 else "<i4").astype(np.int64))
    return np.concatenate(parts)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--join", required=True, help="the coordinator's HOST:PORT")
    parser.add_argument("--token-file", required=True)
    parser.add_argument("--name", required=True)
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--data-base", default=".", help="folder the run's data.prepared path is relative to")
    parser.add_argument("--save", help="save the final shared model here (save_pretrained)")
    parser.add_argument("worker_args", nargs="*", help="tributary worker flags, after --: --ca FILE, --out DIR, ...")
    args = parser.parse_args()
    torch.manual_seed(args.seed)
    device = torch.device(args.device)

    from transformers import GPT2LMHeadModel

    try:
        link = EngineLink(run_gpt2_layout, join=args.join, token_file=args.token_file, name=args.name,
                          worker_args=args.worker_args, engine=f"pytorch {torch.__version__} {device.type}")
    except TributaryError as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    run = link.config
    tokens = train_tokens(run, args.data_base)
    model = GPT2LMHeadModel(gpt2_config(run)).to(device)
    o = run["optimizer"]
    optimizer = torch.optim.AdamW(model.parameters(), lr=o["learningRate"], betas=(o["beta1"], o["beta2"]),
                                  eps=o.get("epsilon", 1e-8), weight_decay=o["weightDecay"])
    warmup = max(1, int(o.get("warmupSteps", 0)))
    schedule = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda step: min(1.0, (step + 1) / warmup))
    diloco = DiLoCo(model, link)
    rng = np.random.default_rng(args.seed)
    batch, length = link.batch_size, link.sequence_length
    vocab = run["model"]["vocabSize"]
    started, steps = time.perf_counter(), 0
    model.train()
    try:
        while not diloco.finished:
            offsets = rng.integers(0, len(tokens) - length - 1, size=batch)
            window = torch.from_numpy(np.stack([tokens[i:i + length + 1] for i in offsets])).to(device)
            logits = model(input_ids=window[:, :-1]).logits
            loss = torch.nn.functional.cross_entropy(logits.reshape(-1, vocab), window[:, 1:].reshape(-1))
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), o.get("gradientClip", 1.0))
            optimizer.step()
            schedule.step()
            steps += 1
            if not diloco.step(loss.item()):
                break
            report = diloco.report
            if report and diloco.round_ended:
                validation = report.get("validationLoss")
                print(f"[{args.name}] round {report['round'] + 1}/{report['rounds']}: loss {report['loss']:.4f}"
                      + (f", validation {validation:.4f}" if validation is not None else ""), file=sys.stderr, flush=True)
    except TributaryError as error:
        print(f"error: {error}", file=sys.stderr)
        link.close()
        return 1
    status = link.close()
    if args.save:
        model.save_pretrained(args.save)
    final = diloco.report or {}
    elapsed = time.perf_counter() - started
    print(json.dumps({"name": args.name, "device": device.type, "steps": steps, "seconds": round(elapsed, 2),
                      "tokensPerSecond": round(steps * batch * length / elapsed, 1),
                      "copySecondsPerRound": round(diloco.copy_seconds / max(1, link.rounds), 5),
                      "waitSecondsPerRound": round(diloco.wait_seconds / max(1, link.rounds), 4),
                      "status": status, "report": final}))
    return 0 if status == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
