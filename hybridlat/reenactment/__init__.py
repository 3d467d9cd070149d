"""Part 4, one-shot re-enactment: hybrid encoder, pairs, training, reenact (nbs/4_reenactment/)."""
