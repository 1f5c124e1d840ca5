"""Layer 1, data: the samples every experiment starts from (synthetic Gaussian classes, bundled digits).

May import: :mod:`nckernels.validation` only.
"""
from .datasets import class_balanced_subset, load_digits, load_image_folder, load_npz, standardize_columns
from .synthetic import ClassData, gaussian_classes

__all__ = ["ClassData", "gaussian_classes", "class_balanced_subset", "load_digits", "load_image_folder", "load_npz",
           "standardize_columns"]
