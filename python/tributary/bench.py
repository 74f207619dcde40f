"""The engine side of `tributary bench engine-link`: it connects to the benchmark's socket and answers every
round without training, so that what the benchmark times is the binding alone: the messages and the copies.
With --torch each round copies the buffer into a PyTorch GPT-2 and back (as `DiLoCo` does); without it,
into a NumPy array and back."""

import argparse
import sys

import numpy as np

from .layout import run_gpt2_layout
from .link import EngineLink


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--socket", required=True)
    parser.add_argument("--torch", action="store_true")
    args = parser.parse_args()
    if args.torch:
        import torch
        from transformers import GPT2LMHeadModel

        from .torch_diloco import DiLoCo, gpt2_config

        link = EngineLink(run_gpt2_layout, socket_path=args.socket, engine=f"pytorch {torch.__version__} (bench)")
        diloco = DiLoCo(GPT2LMHeadModel(gpt2_config(link.config)), link)
        while diloco.step(0.0):
            pass
    else:
        link = EngineLink(run_gpt2_layout, socket_path=args.socket, engine=f"numpy {np.__version__} (bench)")
        model = np.empty(len(link.parameters), dtype=np.float32)
        while (r := link.next_round()) is not None:
            np.copyto(model, link.parameters)
            np.copyto(link.parameters, model)
            link.trained(r.steps, 0.0, 0.0)
    link.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
