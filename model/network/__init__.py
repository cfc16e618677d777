"""AlexNet itself: the builder with named layers, its custom layers and kernels, and precision."""
