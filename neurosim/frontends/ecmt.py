"""Lowering of an ECMT-converted ViT (``models.convert.ecmt.ECMTNet`` of ``models.vit.ViT``) to
a ``neurosim.Graph``, and its quantized twin (:func:`run_twin`).

Tokens are (C, H, W) maps (N = H W tokens, row-major, as ``models.vit.PatchEmbed`` orders
them). Per block of the ViT:

    Input -> MTSpikes (image) -> Conv k = s = patch (patch embedding) -> AddConst (positions)
    x -> ExpectationEC(layernorm) -> MTSpikes -> Conv 1x1 q / k / v (the qkv rows) -> MTSpikes
      -> MatMulEC "qk" (scale d^-1/2) -> ExpectationEC(softmax) -> MTSpikes -> MatMulEC "av"
      -> MTSpikes -> Conv 1x1 proj -> Add x
    x -> ExpectationEC(layernorm) -> MTSpikes -> Conv fc1 -> ExpectationEC(gelu) -> MTSpikes
      -> Conv fc2 -> Add x
    -> ExpectationEC(layernorm) -> TokenMean -> MTSpikes -> Linear head -> Readout

Every linear layer reads the one-hot 2n-channel spikes of its MT neurons with the parallel-
normalized weights W_SNN[o, i 2n + p] = W[o, i] lambda_p (eq. 27, lambda_1^l = 1), quantized
per output channel to ``weight_bits`` (default 8 + n - 1 + ceil(log2(theta_max / theta_min)):
8 bits for the smallest level's weights), so each spike is one add per target (AC). The split
of qkv into three convs reading the same spikes computes the same values and the same adds.
"""
from __future__ import annotations

import math

import numpy as np
import torch
from torch import nn

from models.convert.ecmt import ECMTNet, GeneralEC, MatMulEC, SpikingLinear
from models.vit import ViT
from neurosim.frontends.lower import LoweringError, calib_step
from neurosim.ir import graph as G
from neurosim.ir.semantics import ec_function, matmul_ec_coefficients


def _levels64(theta_pos: float, theta_neg: float, n: int) -> np.ndarray:
    return np.array([theta_pos * 2.0 ** k for k in range(n)]
                    + [-theta_neg * 2.0 ** k for k in range(n)])


def ppn_bits(theta_pos: float, theta_neg: float, n: int) -> int:
    """Weight bits that keep 8 bits for the smallest level's weights (module doc)."""
    spread = max(theta_pos, theta_neg) / min(theta_pos, theta_neg)
    return min(32, 8 + (n - 1) + math.ceil(math.log2(spread) - 1e-12))


def _quant(w: np.ndarray, bits: int) -> tuple[np.ndarray, np.ndarray]:
    """Per-output-channel symmetric quantization of float64 ``w`` [O, ...]."""
    qmax = 2 ** (bits - 1) - 1
    m = np.abs(w.reshape(w.shape[0], -1)).max(axis=1)
    scale = np.where(m > 0, m / qmax, 1.0)
    return np.clip(np.rint(w / scale.reshape((-1,) + (1,) * (w.ndim - 1))), -qmax, qmax), scale


class _Builder:
    def __init__(self, snn: ECMTNet, weight_bits: int | None, in_bits: int):
        self.snn, self.n, self.wb, self.in_bits = snn, snn.n, weight_bits, in_bits
        self.graph = G.Graph(meta={"model": "ecmt", "n": snn.n, "p": snn.p, "T": snn.T,
                                   "ann": (snn.ann_config or {}).get("name")})
        self.ann_mods = dict(snn.ann.named_modules())

    def add(self, op: G.Node, inputs: list[str]) -> str:
        return self.graph.add(op, inputs)

    def mt(self, site: str, src: str) -> str:
        tp, tn = self.snn.thresholds[site]
        shp = self.graph.op(src).shape
        C = shp[0]
        return self.add(G.MTSpikes(name=site + ".mt", shape=(C * 2 * self.n,) + shp[1:],
                                   in_shape=shp, levels=self.n, theta_pos=np.full(C, tp),
                                   theta_neg=np.full(C, tn)), [src])

    def projection(self, path: str, src: str, rows: slice | None = None, *, name=None,
                   kernel: int = 1, in_channels: int | None = None, site: str | None = None
                   ) -> str:
        """MT neurons on ``src`` (site ``site`` or ``path``) and the PPN projection of the ANN
        linear layer ``path`` (output rows ``rows``) as a Conv (maps) or Linear (vectors)."""
        lin: nn.Linear = self.ann_mods[path]
        spikes = src if site is None and name is not None else self.mt(site or path, src)
        tp, tn = self.snn.thresholds[site or path]
        lam = _levels64(tp, tn, self.n)
        w = lin.weight.detach().double().numpy()
        b = lin.bias.detach().double().numpy() if lin.bias is not None else np.zeros(len(w))
        if rows is not None:
            w, b = w[rows], b[rows]
        bits = self.wb or ppn_bits(tp, tn, self.n)
        in_shape = self.graph.op(spikes).shape
        if len(in_shape) == 1:                              # vector: Linear on (C 2n,)
            wq, sc = _quant((w[:, :, None] * lam).reshape(len(w), -1), bits)
            op = G.Linear(name=name or path, shape=(len(w),), in_shape=in_shape, weight=wq,
                          scale=sc, bias=b, weight_bits=bits)
        else:                                                # map: Conv k x k, stride k
            cin = in_channels or w.shape[1]
            wk = w.reshape(len(w), cin, kernel, kernel)
            wsnn = (wk[:, :, None] * lam[None, None, :, None, None]).reshape(
                len(w), cin * 2 * self.n, kernel, kernel)
            wq, sc = _quant(wsnn, bits)
            H, W = in_shape[1:]
            op = G.Conv(name=name or path, shape=(len(w), H // kernel, W // kernel),
                        in_shape=in_shape, weight=wq, scale=sc, bias=b, weight_bits=bits,
                        stride=kernel)
        return self.add(op, [spikes])

    def ec(self, path: str, fn: str, src: str) -> str:
        mod = self.ann_mods[path]
        kw = {}
        if fn == "layernorm":
            kw = dict(weight=mod.weight.detach().double().numpy(),
                      bias=mod.bias.detach().double().numpy(), eps=float(mod.eps))
        return self.add(G.ExpectationEC(name=path, shape=self.graph.op(src).shape, fn=fn, **kw),
                        [src])

    def matmul(self, path: str, form: str, a: str, b: str, heads: int, scale: float) -> str:
        ta, tb = self.snn.thresholds[path + ".a"], self.snn.thresholds[path + ".b"]
        sa, sb = self.graph.op(a).shape, self.graph.op(b).shape
        m = 2 * self.n
        shape = (heads, sa[1] * sa[2], sa[1] * sa[2]) if form == "qk" else (sb[0] // m,) + sb[1:]
        return self.add(G.MatMulEC(name=path, shape=shape, form=form, heads=heads,
                                   levels=self.n, a_theta_pos=ta[0], a_theta_neg=ta[1],
                                   b_theta_pos=tb[0], b_theta_neg=tb[1], scale=scale), [a, b])


def _check(snn: ECMTNet) -> ViT:
    if not isinstance(snn, ECMTNet) or not isinstance(getattr(snn, "ann", None), ViT):
        raise LoweringError(f"ECMT lowering takes an ECMTNet converted from models.vit.ViT, got "
                            f"{type(snn).__name__} of {type(getattr(snn, 'ann', None)).__name__}")
    ann = snn.ann
    if ann.pool != "mean":
        raise LoweringError(f"ECMT lowering supports pool='mean' ViTs; this one has "
                            f"pool={ann.pool!r} (a class token is not lowered)")
    return ann


@torch.no_grad()
def lower_ecmt(snn: ECMTNet, example_input, *, weight_bits: int | None = None,
               in_bits: int = 16) -> G.Graph:
    """Lower the converted ViT ``snn`` (module doc); ``example_input`` [B, C, H, W] images
    calibrate the token mean's input step (the ANN's final LayerNorm range, headroom 4)."""
    ann = _check(snn)
    if weight_bits is not None and not 2 <= int(weight_bits) <= 32:
        raise ValueError(f"weight_bits must be in 2..32, got {weight_bits}")
    x = torch.as_tensor(np.asarray(example_input), dtype=torch.float32)
    b = _Builder(snn, weight_bits, in_bits)
    C_in, S = int(ann.patch_embed.proj.in_features // ann.patch_embed.patch ** 2), ann.img_size
    p, g = ann.patch_embed.patch, ann.patch_embed.grid
    dims = ann.pos_embed.shape[-1]
    cur = b.add(G.Input(name="input", shape=(C_in, S, S), kind="graded", T=snn.T), [])
    cur = b.projection("patch_embed.proj", cur, kernel=p, in_channels=C_in)
    pos = ann.pos_embed.detach().double().numpy()[0].T.reshape(dims, g, g)
    cur = b.add(G.AddConst(name="pos_embed", shape=(dims, g, g), values=pos), [cur])
    for i, blk in enumerate(ann.blocks):
        pre = f"blocks.{i}"
        h = blk.attn.heads
        y = b.ec(f"{pre}.norm1", "layernorm", cur)
        s = b.mt(f"{pre}.attn.qkv", y)
        qkv = [b.projection(f"{pre}.attn.qkv", s, slice(j * dims, (j + 1) * dims),
                            name=f"{pre}.attn.{nm}") for j, nm in enumerate("qkv")]
        q, k = b.mt(f"{pre}.attn.qk.a", qkv[0]), b.mt(f"{pre}.attn.qk.b", qkv[1])
        v = b.mt(f"{pre}.attn.av.b", qkv[2])
        attn = b.matmul(f"{pre}.attn.qk", "qk", q, k, h, blk.attn.scale)
        attn = b.ec(f"{pre}.attn.softmax", "softmax", attn)
        o = b.matmul(f"{pre}.attn.av", "av", b.mt(f"{pre}.attn.av.a", attn), v, h, 1.0)
        cur = b.add(G.Add(name=f"{pre}.add1", shape=(dims, g, g)),
                    [cur, b.projection(f"{pre}.attn.proj", o)])
        y = b.ec(f"{pre}.norm2", "layernorm", cur)
        y = b.ec(f"{pre}.mlp.act", "gelu", b.projection(f"{pre}.mlp.fc1", y))
        cur = b.add(G.Add(name=f"{pre}.add2", shape=(dims, g, g)),
                    [cur, b.projection(f"{pre}.mlp.fc2", y)])
    cur = b.ec("norm", "layernorm", cur)
    feats = ann.norm(_tokens(ann, x))
    step = calib_step(feats * 2.0, in_bits)                 # headroom 4 (2 x calib_step's 2)
    cur = b.add(G.TokenMean(name="token_mean", shape=(dims,), in_scale=step, in_bits=in_bits),
                [cur])
    cur = b.projection("head", cur)
    b.add(G.Readout(name="readout", shape=(ann.num_classes,)), [cur])
    return b.graph.validate()


def _tokens(ann: ViT, x: torch.Tensor) -> torch.Tensor:
    t = ann.patch_embed(x) + ann.pos_embed
    for blk in ann.blocks:
        t = blk(t)
    return t


# ----------------------------------------------------------------------------- the twin
class _TwinMT(nn.Module):
    """MT neurons with the graph's thresholds, float64, one-hot over the last axis."""

    def __init__(self, op: G.MTSpikes):
        super().__init__()
        self.tp, self.tn, self.n = float(op.theta_pos[0]), float(op.theta_neg[0]), op.levels
        if not (np.all(op.theta_pos == self.tp) and np.all(op.theta_neg == self.tn)):
            raise LoweringError(f"twin: {op.name} has per-channel thresholds")
        self.v = None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = x if self.v is None else self.v + x
        out = torch.zeros_like(h)
        lvl = torch.full(h.shape, -1, dtype=torch.long)
        done = torch.zeros(h.shape, dtype=torch.bool)
        for k in reversed(range(self.n)):
            lp, ln = self.tp * 2.0 ** k, self.tn * 2.0 ** k
            fp = ~done & (h >= lp - self.tp / 2)
            fn = ~done & ~fp & (h <= -(ln - self.tn / 2))
            out = torch.where(fp, torch.full_like(h, lp), torch.where(fn, torch.full_like(h, -ln),
                                                                      out))
            lvl = torch.where(fp, k, torch.where(fn, self.n + k, lvl))
            done |= fp | fn
        self.v = h - out
        return (lvl.unsqueeze(-1) == torch.arange(2 * self.n)).double()


class _TwinLinear(nn.Module):
    """Token-wise linear layer on MT spikes with a projection node's integer weights (one or
    the three q, k, v nodes concatenated); output in the ANN's layout [..., O]."""

    def __init__(self, mt: _TwinMT, ops: list, patch: int | None = None):
        super().__init__()
        self.mt, self.patch = mt, patch
        self.w = torch.from_numpy(np.concatenate([o.weight.astype(np.float64).reshape(
            o.shape[0], -1) for o in ops]))
        self.scale = torch.from_numpy(np.concatenate([o.scale for o in ops]))
        self.bias = torch.from_numpy(np.concatenate([o.bias for o in ops]))

    def forward(self, x):
        s = self.mt(x)                                   # [..., I, 2n] (patches: [B, N, C p p])
        if self.patch is None:
            s = s.flatten(-2)                            # index i 2n + l, as the graph's weights
        else:                                            # [B, N, C p p, 2n] -> (c, l, py, px)
            B, N, p = s.shape[0], s.shape[1], self.patch
            s = s.reshape(B, N, -1, p, p, s.shape[-1]).permute(0, 1, 2, 5, 3, 4).flatten(-4)
        return (s @ self.w.T) * self.scale + self.bias


class _TwinMatMul(nn.Module):
    """Matrix-Product EC on the twin MT neurons' one-hot spikes, in exact integer grids."""

    def __init__(self, op: G.MatMulEC, mt_a: _TwinMT, mt_b: _TwinMT):
        super().__init__()
        self.op, self.mt_a, self.mt_b, self.n = op, mt_a, mt_b, op.levels
        self.c = matmul_ec_coefficients(op)
        self.state = None

    def _pq(self, s):
        w = 2.0 ** torch.arange(self.n, dtype=torch.float64)
        return s[..., :self.n] @ w, s[..., self.n:] @ w

    def forward(self, a, b):
        pa, qa = self._pq(self.mt_a(a))
        pb, qb = (t.transpose(-2, -1) for t in self._pq(self.mt_b(b.transpose(-2, -1))))
        if self.state is None:
            z = torch.zeros_like
            self.state = [0, (z(pa), z(qa)), (z(pb), z(qb)), None, 0.0]
        t, sa, sb, sk, prev = self.state
        new = {}
        for i, xa in enumerate((pa, qa)):
            for j, yb in enumerate((pb, qb)):
                k = xa @ yb + xa @ sb[j] + sa[i] @ yb
                new[i, j] = k if sk is None else sk[i, j] + k
        t += 1
        real = ((self.c[0] * new[0, 0] - self.c[1] * new[0, 1]) - self.c[2] * new[1, 0]) \
            + self.c[3] * new[1, 1]
        out = real / t - prev / (t - 1) if t > 1 else real
        self.state = [t, (sa[0] + pa, sa[1] + qa), (sb[0] + pb, sb[1] + qb), new, real]
        return out


class _TwinEC(nn.Module):
    """General EC; F through ``semantics.ec_function`` (the one definition of the graph's
    non-linear functions) on the node's layout."""

    def __init__(self, op: G.ExpectationEC, layout):
        super().__init__()
        self.op, self.layout, self.state = op, layout, None

    def forward(self, x):
        t, s, prev = self.state if self.state is not None else (0, torch.zeros_like(x), 0.0)
        t, s = t + 1, s + x
        to, back = self.layout
        now = back(torch.from_numpy(ec_function(self.op, to(s / t).numpy()))) * t
        self.state = (t, s, now)
        return now - prev


def _tok_to_map(g):
    return (lambda z: z.transpose(1, 2).reshape(z.shape[0], z.shape[2], g, g),
            lambda z: z.reshape(z.shape[0], z.shape[1], -1).transpose(1, 2))


_IDENT = (lambda z: z, lambda z: z)


@torch.no_grad()
def run_twin(snn: ECMTNet, graph: G.Graph, x) -> np.ndarray:
    """The quantized twin: the converted ViT's own dataflow (``models.vit`` forward) with the
    graph's thresholds, integer weights, scales and EC settings, float64; returns the logits
    [B, K] (mean of the T steps' outputs)."""
    import copy
    ann = _check(snn)
    net = copy.deepcopy(snn.net).double()
    ops = graph.nodes
    g = ann.patch_embed.grid
    mods = dict(net.named_modules())
    for path, m in list(mods.items()):
        parent, _, attr = path.rpartition(".")
        holder = mods[parent] if parent else net
        if isinstance(m, SpikingLinear):
            if path.endswith("attn.qkv"):
                pre = path.rsplit(".", 1)[0]
                new = _TwinLinear(_TwinMT(ops[path + ".mt"]),
                                  [ops[f"{pre}.{c}"] for c in "qkv"])
            else:
                new = _TwinLinear(_TwinMT(ops[path + ".mt"]), [ops[path]],
                                  ann.patch_embed.patch if path == "patch_embed.proj" else None)
        elif isinstance(m, MatMulEC):
            new = _TwinMatMul(ops[path], _TwinMT(ops[path + ".a.mt"]),
                              _TwinMT(ops[path + ".b.mt"]))
        elif isinstance(m, GeneralEC):
            layout = _IDENT if isinstance(m.fn, nn.Softmax) else _tok_to_map(g)
            new = _TwinEC(ops[path], layout)
        else:
            continue
        setattr(holder, attr, new)
    tm = ops["token_mean"]
    lo, hi = -(2.0 ** (tm.in_bits - 1)), 2.0 ** (tm.in_bits - 1) - 1
    head = net.head
    xt = torch.as_tensor(np.asarray(x), dtype=torch.float64)
    total = None
    for _ in range(snn.T):
        t = net.patch_embed(xt) + torch.from_numpy(ops["pos_embed"].values).reshape(
            1, -1, g * g).transpose(1, 2)
        for blk in net.blocks:
            t = blk(t)
        t = net.norm(t)
        q = torch.clamp(torch.round(t / tm.in_scale), lo, hi)
        y = head(q.sum(dim=1) * tm.in_scale / q.shape[1])
        total = y if total is None else total + y
    return (total / snn.T).numpy()


__all__ = ["lower_ecmt", "ppn_bits", "run_twin"]
