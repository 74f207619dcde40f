"""The canonical flat layout of a GPT-2 model, shared by Tributary's engine and Hugging Face's
GPT2LMHeadModel: Hugging Face names without the `transformer.` prefix, in Tributary's order, every
matrix stored (out, in) as a Linear stores it (GPT-2's Conv1D weights are (in, out): transpose them)."""

from typing import List, Sequence, Tuple

Layout = List[Tuple[str, List[int]]]

# Conv1D weights in Hugging Face's GPT-2, stored transposed there.
CONV1D_SUFFIXES = ("attn.c_attn.weight", "attn.c_proj.weight", "mlp.c_fc.weight", "mlp.c_proj.weight")


def gpt2_layout(vocab_size: int, context_length: int, layers: int, channels: int) -> Layout:
    """Names and shapes in buffer order for a GPT-2 of this shape (Tributary's `ParameterLayout`)."""
    c = channels
    layout: Layout = [("wte.weight", [vocab_size, c]), ("wpe.weight", [context_length, c])]
    for layer in range(layers):
        p = f"h.{layer}."
        layout += [
            (p + "ln_1.weight", [c]), (p + "ln_1.bias", [c]),
            (p + "attn.c_attn.weight", [3 * c, c]), (p + "attn.c_attn.bias", [3 * c]),
            (p + "attn.c_proj.weight", [c, c]), (p + "attn.c_proj.bias", [c]),
            (p + "ln_2.weight", [c]), (p + "ln_2.bias", [c]),
            (p + "mlp.c_fc.weight", [4 * c, c]), (p + "mlp.c_fc.bias", [4 * c]),
            (p + "mlp.c_proj.weight", [c, 4 * c]), (p + "mlp.c_proj.bias", [c]),
        ]
    layout += [("ln_f.weight", [c]), ("ln_f.bias", [c])]
    return layout


def run_gpt2_layout(run_config: dict) -> Layout:
    """The canonical layout of a run's GPT-2, from the config the worker sends (pass it to `EngineLink`)."""
    m = run_config["model"]
    return gpt2_layout(m["vocabSize"], m["contextLength"], m["layers"], m["channels"])


def layout_size(layout: Sequence[Tuple[str, Sequence[int]]]) -> int:
    """Number of float32 values in the buffer."""
    total = 0
    for _, shape in layout:
        n = 1
        for d in shape:
            n *= d
        total += n
    return total


def layout_hash(layout: Sequence[Tuple[str, Sequence[int]]]) -> str:
    """FNV-1a 64 of every "name:AxB;" in order, as 16 hex digits: the hash the coordinator compares."""
    h = 0xCBF29CE484222325
    for name, shape in layout:
        for byte in f"{name}:{'x'.join(str(d) for d in shape)};".encode():
            h = ((h ^ byte) * 0x100000001B3) & 0xFFFFFFFFFFFFFFFF
    return f"{h:016x}"
