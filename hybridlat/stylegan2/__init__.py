"""Part 0, StyleGAN2 from scratch: layers to generator, StyleSpace, checkpoints (nbs/0_stylegan2/)."""
