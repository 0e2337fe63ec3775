"""Small diffusion experiments for teaching: points of the plane instead of images."""
