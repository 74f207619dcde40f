#!/usr/bin/env python3
"""Independent NumPy (float64) reference of Tributary's GPT-2, used to write a test fixture.

Writes Tests/ModelCoreTests/Fixtures/gpt2_tiny_reference.safetensors with: the config, fixed
weights, tokens and targets, the logits, the loss, every parameter's gradient and the parameters
after three AdamW steps and after three Muon steps (with global-norm clipping). The Swift tests
read it; CI needs no Python.

The backward pass here is written with whole-array NumPy operations (einsum, broadcasting) rather
than Tributary's kernels, and it is itself checked against central finite differences before the
fixture is written.

    python3 tools/gpt2_reference.py [--out PATH]
"""
import argparse
import json
import struct
from pathlib import Path

import numpy as np

CFG = dict(vocab_size=101, context_length=16, layers=2, heads=4, channels=48)
B, T = 3, 11
ADAM = dict(lr=1e-2, beta1=0.9, beta2=0.95, eps=1e-6, weight_decay=0.1, clip=1.0, steps=3)
# Muon on the block matrices (AdamW as above on the rest); Keller Jordan's quintic coefficients.
MUON = dict(momentum=0.95, ns_steps=5, ns_a=3.4445, ns_b=-4.7750, ns_c=2.0315, rms_scale=0.2)


def layout(cfg):
    """Tensor names and shapes in Tributary's slab order; matrices are (out, in)."""
    c, v, t = cfg["channels"], cfg["vocab_size"], cfg["context_length"]
    out = [("wte.weight", (v, c)), ("wpe.weight", (t, c))]
    for l in range(cfg["layers"]):
        p = f"h.{l}."
        out += [
            (p + "ln_1.weight", (c,)), (p + "ln_1.bias", (c,)),
            (p + "attn.c_attn.weight", (3 * c, c)), (p + "attn.c_attn.bias", (3 * c,)),
            (p + "attn.c_proj.weight", (c, c)), (p + "attn.c_proj.bias", (c,)),
            (p + "ln_2.weight", (c,)), (p + "ln_2.bias", (c,)),
            (p + "mlp.c_fc.weight", (4 * c, c)), (p + "mlp.c_fc.bias", (4 * c,)),
            (p + "mlp.c_proj.weight", (c, 4 * c)), (p + "mlp.c_proj.bias", (c,)),
        ]
    out += [("ln_f.weight", (c,)), ("ln_f.bias", (c,))]
    return out


def decayed(name, shape):
    return len(shape) == 2 and not name.startswith("wpe")


def init_params(rng, cfg):
    params = {}
    for name, shape in layout(cfg):
        if name.endswith(("ln_1.weight", "ln_2.weight", "ln_f.weight")):
            params[name] = 1.0 + 0.1 * rng.standard_normal(shape)
        elif len(shape) == 1:
            params[name] = 0.05 * rng.standard_normal(shape)
        else:
            params[name] = 0.08 * rng.standard_normal(shape)
    return params


def gelu(x):
    return 0.5 * x * (1 + np.tanh(np.sqrt(2 / np.pi) * (x + 0.044715 * x ** 3)))


def gelu_grad(x):
    k = np.sqrt(2 / np.pi)
    u = k * (x + 0.044715 * x ** 3)
    th = np.tanh(u)
    return 0.5 * (1 + th) + 0.5 * x * (1 - th ** 2) * k * (1 + 3 * 0.044715 * x ** 2)


def layernorm(x, w, b):
    mu = x.mean(-1, keepdims=True)
    var = ((x - mu) ** 2).mean(-1, keepdims=True)
    xhat = (x - mu) / np.sqrt(var + 1e-5)
    return xhat * w + b, (xhat, var)


def layernorm_back(dy, w, cache):
    xhat, var = cache
    n = xhat.shape[-1]
    dxhat = dy * w
    dx = (dxhat - dxhat.mean(-1, keepdims=True) - xhat * (dxhat * xhat).mean(-1, keepdims=True)) / np.sqrt(var + 1e-5)
    return dx, (dy * xhat).reshape(-1, n).sum(0), dy.reshape(-1, n).sum(0)


def forward(params, tokens, targets, cfg):
    c, nh = cfg["channels"], cfg["heads"]
    hs = c // nh
    b, t = tokens.shape
    mask = np.tril(np.ones((t, t), dtype=bool))
    x = params["wte.weight"][tokens] + params["wpe.weight"][:t][None]
    caches = []
    for l in range(cfg["layers"]):
        p = f"h.{l}."
        ln1, ln1c = layernorm(x, params[p + "ln_1.weight"], params[p + "ln_1.bias"])
        qkv = ln1 @ params[p + "attn.c_attn.weight"].T + params[p + "attn.c_attn.bias"]
        q, k, v = np.split(qkv, 3, axis=-1)
        q = q.reshape(b, t, nh, hs).transpose(0, 2, 1, 3)
        k = k.reshape(b, t, nh, hs).transpose(0, 2, 1, 3)
        v = v.reshape(b, t, nh, hs).transpose(0, 2, 1, 3)
        scores = np.einsum("bhqd,bhkd->bhqk", q, k) / np.sqrt(hs)
        scores = np.where(mask, scores, -np.inf)
        scores = scores - scores.max(-1, keepdims=True)
        att = np.exp(scores)
        att /= att.sum(-1, keepdims=True)
        y = np.einsum("bhqk,bhkd->bhqd", att, v).transpose(0, 2, 1, 3).reshape(b, t, c)
        x2 = x + y @ params[p + "attn.c_proj.weight"].T + params[p + "attn.c_proj.bias"]
        ln2, ln2c = layernorm(x2, params[p + "ln_2.weight"], params[p + "ln_2.bias"])
        h = ln2 @ params[p + "mlp.c_fc.weight"].T + params[p + "mlp.c_fc.bias"]
        hg = gelu(h)
        x3 = x2 + hg @ params[p + "mlp.c_proj.weight"].T + params[p + "mlp.c_proj.bias"]
        caches.append(dict(x=x, ln1=ln1, ln1c=ln1c, q=q, k=k, v=v, att=att, y=y, x2=x2, ln2=ln2, ln2c=ln2c, h=h, hg=hg))
        x = x3
    lnf, lnfc = layernorm(x, params["ln_f.weight"], params["ln_f.bias"])
    logits = lnf @ params["wte.weight"].T
    z = logits - logits.max(-1, keepdims=True)
    probs = np.exp(z) / np.exp(z).sum(-1, keepdims=True)
    loss = -np.log(probs.reshape(b * t, -1)[np.arange(b * t), targets.reshape(-1)]).mean()
    return logits, loss, dict(caches=caches, lnf=lnf, lnfc=lnfc, probs=probs, xL=x)


def backward(params, tokens, targets, cfg, st):
    c, nh = cfg["channels"], cfg["heads"]
    hs = c // nh
    b, t = tokens.shape
    grads = {k: np.zeros_like(v) for k, v in params.items()}
    dlogits = st["probs"].copy().reshape(b * t, -1)
    dlogits[np.arange(b * t), targets.reshape(-1)] -= 1
    dlogits = dlogits.reshape(b, t, -1) / (b * t)
    grads["wte.weight"] += np.einsum("btv,btc->vc", dlogits, st["lnf"])
    dlnf = dlogits @ params["wte.weight"]
    dx, gw, gb = layernorm_back(dlnf, params["ln_f.weight"], st["lnfc"])
    grads["ln_f.weight"] += gw
    grads["ln_f.bias"] += gb
    for l in reversed(range(cfg["layers"])):
        p, cc = f"h.{l}.", st["caches"][l]
        # x3 = x2 + mlp(ln2(x2))
        grads[p + "mlp.c_proj.weight"] += np.einsum("bto,bti->oi", dx, cc["hg"])
        grads[p + "mlp.c_proj.bias"] += dx.sum((0, 1))
        dh = (dx @ params[p + "mlp.c_proj.weight"]) * gelu_grad(cc["h"])
        grads[p + "mlp.c_fc.weight"] += np.einsum("bto,bti->oi", dh, cc["ln2"])
        grads[p + "mlp.c_fc.bias"] += dh.sum((0, 1))
        dln2 = dh @ params[p + "mlp.c_fc.weight"]
        d, gw, gb = layernorm_back(dln2, params[p + "ln_2.weight"], cc["ln2c"])
        grads[p + "ln_2.weight"] += gw
        grads[p + "ln_2.bias"] += gb
        dx2 = dx + d
        # x2 = x + proj(attn(ln1(x)))
        grads[p + "attn.c_proj.weight"] += np.einsum("bto,bti->oi", dx2, cc["y"])
        grads[p + "attn.c_proj.bias"] += dx2.sum((0, 1))
        dy = (dx2 @ params[p + "attn.c_proj.weight"]).reshape(b, t, nh, hs).transpose(0, 2, 1, 3)
        att = cc["att"]
        dv = np.einsum("bhqk,bhqd->bhkd", att, dy)
        datt = np.einsum("bhqd,bhkd->bhqk", dy, cc["v"])
        dscores = att * (datt - (att * datt).sum(-1, keepdims=True)) / np.sqrt(hs)
        dq = np.einsum("bhqk,bhkd->bhqd", dscores, cc["k"])
        dk = np.einsum("bhqk,bhqd->bhkd", dscores, cc["q"])
        merge = lambda a: a.transpose(0, 2, 1, 3).reshape(b, t, c)
        dqkv = np.concatenate([merge(dq), merge(dk), merge(dv)], axis=-1)
        grads[p + "attn.c_attn.weight"] += np.einsum("bto,bti->oi", dqkv, cc["ln1"])
        grads[p + "attn.c_attn.bias"] += dqkv.sum((0, 1))
        dln1 = dqkv @ params[p + "attn.c_attn.weight"]
        d, gw, gb = layernorm_back(dln1, params[p + "ln_1.weight"], cc["ln1c"])
        grads[p + "ln_1.weight"] += gw
        grads[p + "ln_1.bias"] += gb
        dx = dx2 + d
    np.add.at(grads["wte.weight"], tokens.reshape(-1), dx.reshape(b * t, c))
    grads["wpe.weight"][:t] += dx.sum(0)
    return grads


def finite_difference_check(params, tokens, targets, grads, rng):
    """Central differences on a few entries of every tensor; the reference must agree to 1e-6."""
    worst = 0.0
    for name, value in params.items():
        flat = value.reshape(-1)
        for idx in rng.choice(flat.size, size=min(4, flat.size), replace=False):
            old = flat[idx]
            flat[idx] = old + 1e-6
            lp = forward(params, tokens, targets, CFG)[1]
            flat[idx] = old - 1e-6
            lm = forward(params, tokens, targets, CFG)[1]
            flat[idx] = old
            numeric = (lp - lm) / 2e-6
            analytic = grads[name].reshape(-1)[idx]
            worst = max(worst, abs(numeric - analytic) / max(1e-4, abs(numeric) + abs(analytic)))
    assert worst < 1e-5, f"reference backward disagrees with finite differences: {worst}"
    return worst


def optimizer_steps(params, tokens, targets, muon):
    """Three clipped steps: AdamW on every tensor, or with `muon` the block matrices by Muon
    (Nesterov momentum, orthogonalised, scaled to AdamW's update RMS) and the rest by AdamW, one
    learning rate for both."""
    p = {k: v.copy() for k, v in params.items()}
    m = {k: np.zeros_like(v) for k, v in p.items()}
    v2 = {k: np.zeros_like(v) for k, v in p.items()}
    shapes = dict(layout(CFG))
    a, mu = ADAM, MUON["momentum"]
    for step in range(1, a["steps"] + 1):
        _, _, st = forward(p, tokens, targets, CFG)
        g = backward(p, tokens, targets, CFG, st)
        norm = np.sqrt(sum((x ** 2).sum() for x in g.values()))
        scale = a["clip"] / norm if norm > a["clip"] else 1.0
        for k in p:
            gk = g[k] * scale
            wd = a["weight_decay"] if decayed(k, shapes[k]) else 0.0
            p[k] = p[k] * (1 - a["lr"] * wd)
            if muon and k.startswith("h.") and len(shapes[k]) == 2:
                m[k] = mu * m[k] + (1 - mu) * gk
                o = orthogonalize((1 - mu) * gk + mu * m[k])
                p[k] = p[k] - a["lr"] * MUON["rms_scale"] * np.sqrt(max(shapes[k])) * o
                continue
            m[k] = a["beta1"] * m[k] + (1 - a["beta1"]) * gk
            v2[k] = a["beta2"] * v2[k] + (1 - a["beta2"]) * gk ** 2
            mhat = m[k] / (1 - a["beta1"] ** step)
            vhat = v2[k] / (1 - a["beta2"] ** step)
            p[k] = p[k] - a["lr"] * mhat / (np.sqrt(vhat) + a["eps"])
    return p


def orthogonalize(g):
    """Muon's Newton-Schulz iteration, written on the transposed matrix when it is tall (the
    textbook form), unlike the Swift kernel, which uses the right-hand form instead."""
    mu = MUON
    x = g.T if g.shape[0] > g.shape[1] else g
    x = x / (np.linalg.norm(x) + 1e-7)
    for _ in range(mu["ns_steps"]):
        a = x @ x.T
        b = mu["ns_b"] * a + mu["ns_c"] * a @ a
        x = mu["ns_a"] * x + b @ x
    return x.T if g.shape[0] > g.shape[1] else x


def check_orthogonalize(rng):
    """The iteration must leave every singular value of a random matrix in Muon's band."""
    for shape in [(24, 40), (40, 24)]:
        s = np.linalg.svd(orthogonalize(rng.standard_normal(shape)), compute_uv=False)
        assert 0.6 < s.min() and s.max() < 1.25, (shape, s.min(), s.max())


def write_safetensors(path, tensors, metadata):
    header, blobs, offset = {"__metadata__": metadata}, [], 0
    for name, arr in tensors.items():
        data = np.ascontiguousarray(arr).tobytes()
        dtype = {np.dtype("float32"): "F32", np.dtype("int32"): "I32"}[arr.dtype]
        header[name] = {"dtype": dtype, "shape": list(arr.shape), "data_offsets": [offset, offset + len(data)]}
        blobs.append(data)
        offset += len(data)
    raw = json.dumps(header, separators=(",", ":")).encode()
    raw += b" " * ((8 - len(raw) % 8) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(raw)))
        f.write(raw)
        for blob in blobs:
            f.write(blob)


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    default = Path(__file__).resolve().parent.parent / "Tests/ModelCoreTests/Fixtures/gpt2_tiny_reference.safetensors"
    parser.add_argument("--out", type=Path, default=default)
    args = parser.parse_args()

    rng = np.random.default_rng(20261125)
    params = init_params(rng, CFG)
    tokens = rng.integers(0, CFG["vocab_size"], size=(B, T))
    targets = rng.integers(0, CFG["vocab_size"], size=(B, T))
    logits, loss, st = forward(params, tokens, targets, CFG)
    grads = backward(params, tokens, targets, CFG, st)
    worst = finite_difference_check(params, tokens, targets, grads, rng)
    after = optimizer_steps(params, tokens, targets, muon=False)
    after_muon = optimizer_steps(params, tokens, targets, muon=True)
    check_orthogonalize(np.random.default_rng(7))

    f32 = lambda a: np.asarray(a, dtype=np.float32)
    tensors = {"tokens": tokens.astype(np.int32), "targets": targets.astype(np.int32),
               "logits": f32(logits), "loss": f32(np.array([loss]))}
    for name, _ in layout(CFG):
        tensors["param." + name] = f32(params[name])
        tensors["grad." + name] = f32(grads[name])
        tensors["step3." + name] = f32(after[name])
        tensors["muon3." + name] = f32(after_muon[name])
    meta = {k: str(v) for k, v in CFG.items()}
    meta.update({"batch": str(B), "length": str(T)})
    meta.update({"adam." + k: str(v) for k, v in ADAM.items()})
    meta.update({"muon." + k: str(v) for k, v in MUON.items()})
    args.out.parent.mkdir(parents=True, exist_ok=True)
    write_safetensors(args.out, tensors, meta)
    print(f"wrote {args.out}: loss {loss:.6f}, finite-difference worst relative error {worst:.2e}")


if __name__ == "__main__":
    main()
