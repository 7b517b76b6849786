"""Paper-mode conventions: how each seed paper turned operation counts into millijoules.

All of them price ``E = E_MAC x MACs + E_AC x SOPs`` with E_MAC = 4.6 pJ and E_AC = 0.9 pJ
(Horowitz ISSCC 2014, fp32 at 45 nm; the ``45nm`` energy table) and SOPs(l) = rate x T x
FLOPs(l) (seed-facts §3). They differ in what they count as MACs, and recounts of the same
models differ by up to 1.6x, so every estimate names its convention. A :class:`Convention`
fixes four choices:

* ``first_layer``: the image-encoding layer's MACs counted ``"once"`` per inference (the image
  is the same every time step) or ``"per_step"`` (T times: the layer runs every step);
* ``stem_out_channels``: count the first conv as if it had this many output channels (None:
  its own);
* ``repconv``: RepConv counted ``"fused"`` (one 3x3 conv on spikes) or ``"unfused"`` (1x1 on
  spikes, then a depthwise 3x3 and a 1x1 on graded values); None: as lowered (graph meta) or
  fused;
* ``graded``: layers other than the first whose input is graded (Meta-SpikeFormer's SepConv
  ``pw2`` after the depthwise conv, unfused RepConv stages) counted as ``"mac"`` (dense MACs
  every step at E_MAC) or ``"ac"`` (dense ACs every step at E_AC: rate 1, what a spike-rate
  counter reports for values that are never zero).

Named conventions (:data:`CONVENTIONS`):

``neurosim``: the default: first layer once per inference, graded layers as MACs, RepConv as
    lowered. The most literal reading of seed-facts §3.
``spikformer``: Zhou et al., ICLR 2023. Published mJ minus 0.9 pJ x published SOPs is
    1.596 mJ for 8-384, 8-512 and 8-768 alike (7.734 - 6.138, 11.577 - 9.981, 21.477 -
    19.881), i.e. 4.6 pJ x T x 86.7 M MACs = 4.6 pJ x 4 x (64 x 224 x 224 x 3 x 9): the stem's
    3x3 conv counted every time step with 64 output channels for every model size (the models'
    own first convs have D/8 = 48, 64, 96). Reproduces the published mJ from the published SOPs
    within 0.02% (:func:`published_energy_j`, ``tests/golden/paper_spikformer_published.json``).
``meta-spikeformer``: Yao et al., ICLR 2024 (SDT v2). RepConv fused: Table 5's "RepConv-1/2/3
    -> Linear" saves 1.8 mJ and "RepConv-4 -> Linear" 0.7 mJ on the C = 48 model (T = 1);
    fused, each q/k/v RepConv costs 9x its linear replacement, and the savings imply input rates
    of 0.32 and 0.37, plausible spike rates; unfused, the graded dw3x3 + 1x1 MACs alone would
    save ~3.7 mJ for q/k/v at any rate. First layer every step: Table 1's T = 4 / T = 1 energies
    are 4.2x, 4.2x and 4.0x, not below 4x. Graded SepConv ``pw2`` as MACs: SDT v3 (§3.3) calls
    the direct depthwise -> pointwise connection "a serious energy consumption problem", which
    only a MAC count makes it (dense ACs would cost ~0.21 mJ of 7.8 mJ on C = 48). These are
    inferences from published totals; the papers do not state them.

SOPs as published already exclude the first layer; :func:`published_energy_j` adds it the
convention's way.
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from fractions import Fraction

FIRST_LAYER = ("once", "per_step")
REPCONV = ("fused", "unfused")
GRADED = ("mac", "ac")


@dataclass(frozen=True)
class Convention:
    """How a paper counts (module doc). ``source``: the paper; ``evidence``: why we read it so."""

    name: str
    source: str
    first_layer: str = "once"
    stem_out_channels: int | None = None
    repconv: str | None = None
    graded: str = "mac"
    evidence: str = ""

    def __post_init__(self):
        for key, allowed in (("first_layer", FIRST_LAYER), ("graded", GRADED)):
            if getattr(self, key) not in allowed:
                raise ValueError(f"convention {self.name!r}: {key} must be one of {allowed}, "
                                 f"got {getattr(self, key)!r}")
        if self.repconv is not None and self.repconv not in REPCONV:
            raise ValueError(f"convention {self.name!r}: repconv must be one of {REPCONV} or "
                             f"None, got {self.repconv!r}")
        if self.stem_out_channels is not None and self.stem_out_channels < 1:
            raise ValueError(f"convention {self.name!r}: stem_out_channels must be >= 1, got "
                             f"{self.stem_out_channels}")

    def first_layer_passes(self, T: int, static_input: bool) -> int:
        """MAC passes of the image-encoding layer per inference (frame input: always T)."""
        return 1 if self.first_layer == "once" and static_input else T

    def stem_flops(self, flops: int, out_channels: int) -> Fraction:
        """Dense MACs of the first conv as counted: ``flops`` rescaled to
        ``stem_out_channels`` output channels when the convention fixes them."""
        if self.stem_out_channels is None:
            return Fraction(flops)
        return Fraction(flops * self.stem_out_channels, out_channels)

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)


CONVENTIONS: dict[str, Convention] = {c.name: c for c in (
    Convention("neurosim", "seed-facts §3 read literally (neurosim's default)",
               first_layer="once", repconv=None, graded="mac",
               evidence="the image is the same every time step, so its MACs are counted once"),
    Convention("spikformer", "Zhou et al., ICLR 2023, ImageNet table (seed-facts §2)",
               first_layer="per_step", stem_out_channels=64, repconv="fused", graded="mac",
               evidence="published mJ - 0.9 pJ x published SOPs = 1.596 mJ for all three "
                        "sizes = 4.6 pJ x 4 x 64*224*224*3*9 MACs"),
    Convention("meta-spikeformer", "Yao et al., ICLR 2024 (SDT v2), Tables 1 and 5",
               first_layer="per_step", repconv="fused", graded="mac",
               evidence="Table 5 RepConv -> Linear savings imply fused RepConv at rates "
                        "0.32-0.37; Table 1 T=4/T=1 energy ratios 4.0-4.2"),
)}


def get_convention(convention: str | Convention, **overrides) -> Convention:
    """A named convention (or a Convention), with fields replaced by ``overrides``."""
    if isinstance(convention, Convention):
        conv = convention
    elif convention in CONVENTIONS:
        conv = CONVENTIONS[convention]
    else:
        raise ValueError(f"unknown paper convention {convention!r}; known: "
                         f"{', '.join(CONVENTIONS)}")
    return dataclasses.replace(conv, **overrides) if overrides else conv


def conv_macs(in_shape: tuple[int, int, int], out_channels: int, kernel: int, stride: int = 1,
              padding: int = 0, groups: int = 1) -> int:
    """Dense MACs of one conv pass: ``C_out H_out W_out (C_in / groups) k^2``."""
    c, h, w = in_shape
    ho = (h + 2 * padding - kernel) // stride + 1
    wo = (w + 2 * padding - kernel) // stride + 1
    return out_channels * ho * wo * (c // groups) * kernel * kernel


def published_energy_j(convention: str | Convention, sops: float, *, T: int,
                       first_layer_macs: int, first_layer_out_channels: int,
                       graded_macs: float = 0.0, e_ac_pj: float = 0.9,
                       e_mac_pj: float = 4.6) -> float:
    """Energy (J) of a published SOP count under ``convention``: E_AC x ``sops`` (first layer
    excluded, as published) + the first layer's MACs (``first_layer_macs`` per pass of a conv
    with ``first_layer_out_channels``, rescaled and repeated the convention's way; the papers
    feed static images) + ``graded_macs`` per inference at E_MAC (``graded="mac"``) or E_AC."""
    conv = get_convention(convention)
    stem = conv.stem_flops(first_layer_macs, first_layer_out_channels)
    stem *= conv.first_layer_passes(T, static_input=True)
    pj = Fraction(1, 10 ** 12)
    graded = Fraction(graded_macs) * Fraction(e_mac_pj if conv.graded == "mac" else e_ac_pj)
    return float((Fraction(e_mac_pj) * stem + Fraction(e_ac_pj) * Fraction(sops) + graded) * pj)


# Zhou et al., ICLR 2023 (Spikformer), ImageNet, T = 4 (seed-facts §2): SOPs and energy as
# published, with the SPS stem's first conv (3 -> D/8, 3x3, stride 1, padding 1, at 224 x 224).
SPIKFORMER_PUBLISHED = {
    "spikformer-8-384": {"sops": 6.82e9, "energy_mj": 7.734, "T": 4, "stem_out": 48},
    "spikformer-8-512": {"sops": 11.09e9, "energy_mj": 11.577, "T": 4, "stem_out": 64},
    "spikformer-8-768": {"sops": 22.09e9, "energy_mj": 21.477, "T": 4, "stem_out": 96},
}


def spikformer_published_energies(convention: str | Convention = "spikformer") -> dict:
    """Per Spikformer ImageNet model: published SOPs and mJ beside :func:`published_energy_j`
    under ``convention`` (relative error included)."""
    out = {}
    for name, p in SPIKFORMER_PUBLISHED.items():
        macs = conv_macs((3, 224, 224), p["stem_out"], 3, 1, 1)
        e = published_energy_j(convention, p["sops"], T=p["T"], first_layer_macs=macs,
                               first_layer_out_channels=p["stem_out"])
        out[name] = {"sops": p["sops"], "published_mj": p["energy_mj"],
                     "estimate_mj": e * 1e3, "rel_error": e * 1e3 / p["energy_mj"] - 1,
                     "stem_macs_per_pass": macs}
    return out


__all__ = ["CONVENTIONS", "Convention", "SPIKFORMER_PUBLISHED", "conv_macs", "get_convention",
           "published_energy_j", "spikformer_published_energies"]
