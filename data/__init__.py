"""Assets that ship inside the wheel as `hybridlat.assets` (trained weights and their model cards)."""
