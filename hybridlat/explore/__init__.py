"""Part 3, latent exploration: inversion, channels, edits, explorer, widgets (nbs/3_explore/)."""
