"""finetune's engine: AlexNet finetuning in plain TensorFlow 2, usable without the service.

Import what you need from the submodules; this package imports nothing heavy on its own. Importing
it before TensorFlow turns oneDNN on for x86 CPUs where TensorFlow leaves it off and pools
TensorFlow's CPU memory (`cpu_kernels`), so every process of the service, the CLI and the tests
compute the same way; set TF_ENABLE_ONEDNN_OPTS=0 or TF_CPU_ALLOCATOR_USE_BFC=false to keep
TensorFlow's own.
"""

from model.cpu_kernels import prefer_onednn, prefer_pooled_memory

prefer_onednn()
prefer_pooled_memory()
