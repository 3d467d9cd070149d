"""Part 5, the classroom: assignments, their checks, the offline site (nbs/5_classroom/)."""
