"""Networks of the SAR → optical colorization system: prompt tokenizer and CLIP text encoder, image encoder
for the contrastive stage, and the AutoencoderKL (diffusers / transformers classes configured from YAML)."""
