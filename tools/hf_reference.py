#!/usr/bin/env python3
"""Writes the Hugging Face exchange fixtures under Tests/TrainingTests/Fixtures/hf (CI needs no Python).

Import direction: `transformers` builds a small GPT2LMHeadModel with random weights (LayerNorm
parameters randomised too, so a mix-up between them shows), saves it with save_pretrained, and
records its logits for fixed tokens. Tributary must import the folder and give the same logits.

Export direction: the Tributary binary trains a small model for a few steps, `tributary export
--format hf` writes it out, and `transformers` loads that folder as GPT2LMHeadModel and records
its logits. The checkpoint and the exported files are committed; Tributary must export
byte-identical files from the checkpoint and give the same logits as `transformers`.

    swift build -c release
    pip install torch transformers   # the CPU wheel is enough: pip install torch==2.13.0+cpu
    python3 tools/hf_reference.py
"""
import json
import shutil
import subprocess
import tempfile
from pathlib import Path

import torch
from safetensors.torch import save_file
from transformers import GPT2Config, GPT2LMHeadModel

ROOT = Path(__file__).resolve().parent.parent
OUT = ROOT / "Tests/TrainingTests/Fixtures/hf"
BINARY = ROOT / ".build/release/tributary"
TOKENS = [0, 5, 17, 3, 99, 42, 42, 7, 63, 1, 88, 30, 12, 95, 2, 77, 50, 31, 64, 9]


def logits_of(model, tokens):
    model.eval()
    with torch.no_grad():
        return model(torch.tensor([tokens])).logits[0].contiguous().float()


def import_fixture():
    config = GPT2Config(vocab_size=101, n_positions=32, n_embd=32, n_layer=2, n_head=4,
                        resid_pdrop=0.0, embd_pdrop=0.0, attn_pdrop=0.0,
                        bos_token_id=None, eos_token_id=None)
    torch.manual_seed(20261127)
    model = GPT2LMHeadModel(config)
    with torch.no_grad():
        for name, p in model.named_parameters():
            if name.endswith("ln_1.weight") or name.endswith("ln_2.weight") or name.endswith("ln_f.weight"):
                p.copy_(1 + 0.3 * torch.randn_like(p))
            else:
                p.copy_(0.2 * torch.randn_like(p))
    folder = OUT / "import-model"
    shutil.rmtree(folder, ignore_errors=True)
    model.save_pretrained(folder, safe_serialization=True)
    (folder / "generation_config.json").unlink(missing_ok=True)
    tokens = TOKENS
    save_file({"tokens": torch.tensor(tokens, dtype=torch.int32), "logits": logits_of(model, tokens)},
              OUT / "import-logits.safetensors")


def export_fixture():
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        (tmp / "run.yaml").write_text(
            "model: {vocabSize: 100, contextLength: 32, layers: 2, heads: 4, channels: 32}\n"
            "batchSize: 4\nsequenceLength: 32\nsteps: 6\n"
            "optimizer: {learningRate: 0.05, warmupSteps: 1}\n"
            "data: {markovVocabulary: 100}\n"
            "evaluation: {interval: 0}\ncheckpoint: {interval: 6, keep: 1}\n")
        subprocess.run([BINARY, "train", "--config", tmp / "run.yaml", "--out", tmp / "run", "--threads", "1"], check=True)
        checkpoint = OUT / "export-checkpoint"
        shutil.rmtree(checkpoint, ignore_errors=True)
        shutil.copytree(tmp / "run/checkpoints/step-00000006", checkpoint)
        # The export reads parameters only; the moments would just make the fixture bigger.
        (checkpoint / "optimizer.safetensors").unlink()
        exported = OUT / "export-expected"
        shutil.rmtree(exported, ignore_errors=True)
        subprocess.run([BINARY, "export", "--format", "hf", "--checkpoint", checkpoint, exported], check=True)
    model = GPT2LMHeadModel.from_pretrained(exported)
    config = json.loads((exported / "config.json").read_text())
    assert model.config.n_layer == config["n_layer"] and model.config.vocab_size == 100
    tokens = [t % 100 for t in TOKENS]
    save_file({"tokens": torch.tensor(tokens, dtype=torch.int32), "logits": logits_of(model, tokens)},
              OUT / "export-logits.safetensors")


if __name__ == "__main__":
    OUT.mkdir(parents=True, exist_ok=True)
    import_fixture()
    export_fixture()
    print("wrote", OUT)
