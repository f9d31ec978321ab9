"""A CPO simulator speaking real OCPI 2.2.1, for the demo, the end-to-end tests and the benchmarks."""
