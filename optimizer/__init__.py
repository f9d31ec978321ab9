"""optimizer: the per-site charging plan as a linear program (pure: numpy, scipy, msgspec)."""
