"""Images in: dataset sources, the one preprocessing function, prepared datasets and their batches."""
