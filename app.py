"""FastDiff app (placeholder until the Gradio app lands): generates one grid with the shipped model."""
import sys

from fastdiff.cli import main

if __name__ == "__main__":
    sys.exit(main(["sample", "--checkpoint", "checkpoints/cifar10-base", "--class", "frog", "--n", "16",
                   "--out", "samples.png"]))
