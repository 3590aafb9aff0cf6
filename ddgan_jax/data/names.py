"""The names a config's `data` section may use, importable without TensorFlow.

`config_checks` refuses a bad name before anything starts, and must not import TensorFlow;
the code behind the names (`input_pipeline`, `datasets/sources`) does. Both read them here.
"""

# data.dataset: each has a source in datasets/sources.py (its DATASETS; a test keeps the two
# equal, since reading that list imports TensorFlow).
DATASET_NAMES = ('fashion_mnist', 'mnist', 'imagenet2012', 'imagenet_resized/64x64',
                 'downsampled_imagenet/64x64', 'cifar10', 'celeb_a_hq/256',
                 'lsun/church_outdoor', 'folder', 'synthetic')
# data.crop: input_pipeline's crop modes (its module doc says what each does).
CROP_MODES = ('resize', 'center', 'random')
