"""MixMIM / MixMAE with a Swin encoder (Li et al., CVPR 2023), sized for 2-channel SAR (VH, VV) input."""
