"""The estimator: modality contributions C(M_i), shares and the imbalance ratio Δ per layer with
bootstrap intervals, the suppression layer, agreement between methods, and the missing-modality
ablation — from a trace file alone (no model).

    est = estimate("runs/demo.h5")            # or an open Trace
    print(format_estimate(est))               # per-layer tables
    json.dumps(estimate_to_json(est))         # the same numbers for scripts
"""

from .estimator import METHOD_NAMES, estimate
from .report import estimate_to_json, format_estimate, format_estimate_latex
from .results import (MODALITY_COLUMNS, AblationRow, Agreement, Estimate, LensCurve, ModalityTable,
                      Overall, Suppression)

__all__ = [
    "estimate", "format_estimate", "format_estimate_latex", "estimate_to_json", "METHOD_NAMES", "MODALITY_COLUMNS",
    "Estimate", "ModalityTable", "Overall", "Suppression", "LensCurve", "AblationRow", "Agreement",
]
