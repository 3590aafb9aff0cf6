"""Images and masks: the dataset sources and the offline builders (`datasets/`), the host input
pipeline that turns them into global batches (`input_pipeline`), the masks (on device: the
conventions, shapes and hole ratios in `masks`; the training generators and their mixture in
`training_masks`; RePaint's six evaluation families and `family_masks`, the one dispatcher by family
name, in `eval_masks`; the held-out shapes in `heldout_masks`), images out as uint8, grids and PNG
files (`visualize`), and the dataset and crop names a config may use, without TensorFlow (`names`).
It may import platform/ (input_pipeline's barrier while a dataset is prepared) and nothing else of
ddgan_jax. This `__init__` imports nothing, so importing `data.masks` never starts TensorFlow;
`datasets/` does, when input_pipeline imports it.
"""
