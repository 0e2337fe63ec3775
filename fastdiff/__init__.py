"""FastDiff: fast class-conditional diffusion on CIFAR-10.

Layers, each importing only those before it: config, device, data, images, report (the foundation);
nn; export; diffusion; train, eval and lab; web; bench and app; cli.
"""

__version__ = "0.2.0"
