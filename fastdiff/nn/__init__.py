"""Networks and their saved form: the U-Net, the LowDiff cascade network, the DDPM baseline, checkpoints."""
