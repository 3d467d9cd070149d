"""Part 1, real faces: landmarks, identity, video, metrics, datasets (nbs/1_realfaces/)."""
