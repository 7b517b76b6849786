"""Masked image modelling (MIM) pre-training with spike sparse convolution (seed sdt-v3 §3.4):
``ssc`` (the SSC training layer), ``masking`` (patch masks, normalised targets, loss),
``decoder`` (plain transformer decoder with mask tokens), ``pretrain`` (pre-training, encoder
checkpoints, fine-tuning), ``probes`` (firing rates and effective rank of encoder features)."""
