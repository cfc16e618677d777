"""finetune's engine: AlexNet finetuning in plain TensorFlow 2, usable without the service.

Four sub-packages, each importing only those below it: `training` (the loop, the feature cache,
optimizers, checkpoints, specs), `exports` (SavedModel, portable formats, predictor, weights),
`network` (AlexNet, its layers and kernels, precision) and `data` (sources, preprocessing,
prepared datasets, batches). Importing the engine changes nothing in the process: programs that
run TensorFlow call `model.network.cpu_kernels.choose_cpu_settings()` before importing it, as
`finetune`, the workers and the API do.
"""
