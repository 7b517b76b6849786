"""ANN-to-SNN conversion of trained models.

* :mod:`models.convert.ecmt`: Expectation Compensation + Multi-Threshold neurons (seed ecmt,
  Algorithm 1) for vision transformers: ``snn = ecmt.convert(ann, x_calib, n=8, p=0.99)``.
"""
from .ecmt import (ConversionError, ECMTNet, GeneralEC, MatMulEC, MTNeuron, SpikingLinear,
                   convert, list_shipped_anns, load_snn, resolve_ann, save_snn)

__all__ = ["ConversionError", "ECMTNet", "GeneralEC", "MTNeuron", "MatMulEC", "SpikingLinear",
           "convert", "list_shipped_anns", "load_snn", "resolve_ann", "save_snn"]
