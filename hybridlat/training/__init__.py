"""Part 2, training the generator: discriminator, data, checkpoints, loop, export (nbs/2_training/)."""
