"""DiLoCo around a PyTorch model: wrap the module, call `step(loss)` after each optimizer step, and every
round the flattened parameters go through Tributary (ring, codec, outer step) and come back as the new
shared model. Works on whatever device the model is on (CUDA included): the worker needs no CUDA."""

import time
from typing import List, Tuple

import numpy as np
import torch

from .layout import CONV1D_SUFFIXES, run_gpt2_layout  # noqa: F401  (re-exported for examples)
from .link import EngineLink, TributaryError


def gpt2_config(run_config: dict):
    """A Hugging Face `GPT2Config` for the run's model: Tributary's GPT-2 (tanh GELU, LayerNorm eps 1e-5,
    tied embeddings, no dropout), so that both engines compute the same function."""
    from transformers import GPT2Config

    m = run_config["model"]
    return GPT2Config(vocab_size=m["vocabSize"], n_positions=m["contextLength"], n_embd=m["channels"],
                      n_layer=m["layers"], n_head=m["heads"], activation_function="gelu_new", resid_pdrop=0.0,
                      embd_pdrop=0.0, attn_pdrop=0.0, layer_norm_epsilon=1e-5, tie_word_embeddings=True,
                      # GPT-2's 50256 lies outside a smaller vocabulary; tributary's export writes null too.
                      bos_token_id=None, eos_token_id=None)


class DiLoCo:
    """Tributary's DiLoCo rounds around a Hugging Face `GPT2LMHeadModel` (or any module whose `transformer`
    holds parameters under the canonical names). Construct it after `EngineLink`; it loads the run's
    starting model into `model`."""

    def __init__(self, model: torch.nn.Module, link: EngineLink):
        self.model = model
        self.link = link
        self._entries = self._map(model, link.layout)
        self._round = link.next_round()
        self._steps = 0
        self._loss_sum = 0.0
        self._compute = 0.0
        self._step_started = time.perf_counter()
        # Seconds spent copying between the module and the shared buffer (the binding's own cost), and
        # waiting for the worker (the ring, the outer step, slower peers).
        self.copy_seconds = 0.0
        self.wait_seconds = 0.0
        # True right after the step that ended a round (its report is then in `report`).
        self.round_ended = False
        if self._round is not None:
            self._load()

    @property
    def finished(self) -> bool:
        """True once the run ended; `model` then holds the final shared model."""
        return self._round is None

    @property
    def report(self):
        """The latest report the worker sent to the coordinator (round, loss, validation, bytes)."""
        return self.link.final_report if self.finished else (self._round.report if self._round else None)

    def step(self, loss: float) -> bool:
        """Call after each inner optimizer step with its loss; returns False when the run has finished."""
        if self._round is None:
            raise TributaryError("the run has finished; stop training")
        now = time.perf_counter()
        self._compute += now - self._step_started
        self._steps += 1
        self._loss_sum += float(loss)
        self.round_ended = self._round.is_over(self._steps, self._compute)
        if self.round_ended:
            started = time.perf_counter()
            self._store()
            stored = time.perf_counter()
            self.link.trained(self._steps, self._loss_sum / self._steps, self._compute)
            self._round = self.link.next_round()
            answered = time.perf_counter()
            self._load()
            self._steps, self._loss_sum, self._compute = 0, 0.0, 0.0
            self.copy_seconds += (stored - started) + (time.perf_counter() - answered)
            self.wait_seconds += answered - stored
        self._step_started = time.perf_counter()
        return self._round is not None

    @staticmethod
    def _map(model: torch.nn.Module, layout) -> List[Tuple[torch.Tensor, int, int, Tuple[int, ...], bool]]:
        body = getattr(model, "transformer", model)
        named = dict(body.named_parameters())
        entries, offset = [], 0
        for name, shape in layout:
            if name not in named:
                raise TributaryError(f"the model has no parameter {name} (the run's layout names it)")
            p = named[name]
            count = int(np.prod(shape))
            transposed = name.endswith(CONV1D_SUFFIXES) and tuple(p.shape) == tuple(reversed(shape))
            if not transposed and tuple(p.shape) != tuple(shape):
                raise TributaryError(f"{name} is {tuple(p.shape)} in the model, {tuple(shape)} in the run's layout")
            entries.append((p, offset, count, tuple(shape), transposed))
            offset += count
        return entries

    def _load(self) -> None:
        """The buffer (the round's starting point, or the final model) into the module's parameters."""
        buffer = torch.from_numpy(np.asarray(self.link.parameters))
        with torch.no_grad():
            for p, offset, count, shape, transposed in self._entries:
                source = buffer[offset:offset + count].view(shape)
                p.copy_(source.t() if transposed else source, non_blocking=False)

    def _store(self) -> None:
        """The module's parameters into the buffer, as the layout stores them."""
        buffer = torch.from_numpy(np.asarray(self.link.parameters))
        with torch.no_grad():
            for p, offset, count, shape, transposed in self._entries:
                buffer[offset:offset + count].view(shape).copy_(p.t() if transposed else p)
