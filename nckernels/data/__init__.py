"""Layer 1, data: the samples every experiment starts from (synthetic Gaussian classes, harder families, bundled digits).

May import: :mod:`nckernels.validation` only.
"""
from .datasets import class_balanced_subset, load_digits, load_image_folder, load_npz, standardize_columns
from .hard import (REFERENCE_FOUR_CLASS_TARGETS, anisotropic_gaussian_classes, concentric_shells, four_class_gaussians,
                   xor_clusters)
from .synthetic import ClassData, gaussian_classes
from .targets import TARGET_ENCODINGS, class_targets

__all__ = ["ClassData", "gaussian_classes", "class_balanced_subset", "load_digits", "load_image_folder", "load_npz",
           "standardize_columns", "TARGET_ENCODINGS", "class_targets", "REFERENCE_FOUR_CLASS_TARGETS",
           "four_class_gaussians", "anisotropic_gaussian_classes", "xor_clusters", "concentric_shells"]
