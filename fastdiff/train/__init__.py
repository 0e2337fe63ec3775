"""Training: the paper's recipe, EMA, checkpoints, exact resume, previews, loss plots."""
