"""finetune's engine: AlexNet finetuning in plain TensorFlow 2, usable without the service.

Import what you need from the submodules; this package imports nothing heavy on its own.
"""
