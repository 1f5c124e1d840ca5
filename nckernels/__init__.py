"""nckernels: kernel analysis of neural collapse (NC1) in shallow networks.

Every formula the book uses lives in this package; each function's docstring names the chapter that
derives it.
"""
from .collapse import BETWEEN_WEIGHTS, NC1Result, class_block_sums, nc1_from_features, nc1_from_kernel
from .data import ClassData, gaussian_classes
from .duals import (
    ACTIVATIONS,
    Activation,
    erf_dual,
    erf_dual_derivative,
    get_activation,
    relu_angle,
    relu_dual,
    relu_dual_derivative,
)
from .two_layer import (
    FiniteWidthKernels,
    derivative_kernel,
    finite_width_kernels,
    nngp,
    ntk,
    preactivation_kernel,
    two_layer_features,
    two_layer_kernels,
)

from .adaptive import AdaptiveKernelResult, EoSConvergenceError, adaptive_kernel, adaptive_kernel_gradient, default_schedule, eos_label_matrix, eos_residual, eos_update, solve_adaptive_kernel
from .agop import MLP, TrainedMLP, matrix_correlation, mlp_layer_analysis, model_agop, nfa_correlation, train_mlp
from .datasets import class_balanced_subset, load_digits, load_image_folder, load_npz  # noqa: E501
from .empirical_ntk import BlockMeans, InvariantStats, MLPClassifier, ProbedTraining, TwoLayerNTKNet, block_means, empirical_ntk, feature_ntk, invariant_stats, kernel_alignment, output_ntk, train_with_ntk_probes  # noqa: E501
from .ntk_collapse import BlockKernel, BlockState, BlockTrajectory, CollapseMetrics, block_flow_rhs, collapse_metrics, init_block_state, invariant, loss_components, nc2_etf_distance, nc3_self_duality, simulate_block_flow  # noqa: E501
from .rfm import DeepRFMResult, KRRModel, deep_rfm, gaussian_kernel, kernel_agop, krr_fit, laplace_kernel, mahalanobis_kernel, mahalanobis_sq_distances, nc2_from_features, psd_sqrt, random_features
from .sweeps import SweepGrid, execute_run, grid_points, harvest_glue, load_grid, read_results, run_key, run_sweep
from .training import NetworkParams, TrainingConfig, TrainingResult, batched_feature_nc1, hidden_features, init_networks, log_epochs, terminal_phase, train_networks, train_networks_loop, trained_network_grid

__version__ = "0.1.0"
