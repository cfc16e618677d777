"""finetune's engine: AlexNet finetuning in plain TensorFlow 2, usable without the service.

Import what you need from the submodules; this package imports nothing heavy on its own. Importing
it before TensorFlow turns oneDNN on for x86 CPUs where TensorFlow leaves it off (`cpu_kernels`),
so every process of the service, the CLI and the tests compute with the same kernels; set
TF_ENABLE_ONEDNN_OPTS=0 to keep TensorFlow's own.
"""

from model.cpu_kernels import prefer_onednn

prefer_onednn()
