"""Models out: the SavedModel export, portable formats, the predictor, and the weights files."""
