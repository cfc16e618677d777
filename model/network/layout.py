"""AlexNet's layer names, importable without TensorFlow (the API validates specs with them)."""

# The layers that hold weights, in network order: what `train_layers` and `reinit_layers` name.
WEIGHT_LAYERS: tuple[str, ...] = ("conv1", "conv2", "conv3", "conv4", "conv5", "fc6", "fc7", "fc8")
