"""What the tests and the benchmarks share: generated images and datasets, the service's processes,
and waits on conditions with a bound. Not installed with the package; used from the checkout."""
