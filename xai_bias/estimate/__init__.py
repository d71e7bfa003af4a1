"""The estimator: modality contributions C(M_i), shares and the imbalance ratio Δ per layer with
bootstrap intervals, the suppression layer, agreement between methods, and the missing-modality
ablation — from a trace file alone (no model). Every registered method
(``xai_bias.instruments.METHODS``) brings its own contribution function
(``xai_bias.estimate.contributions``); the estimator treats them all alike.

    est = estimate("runs/demo.h5")            # or an open Trace
    print(format_estimate(est))               # per-layer tables
    json.dumps(estimate_to_json(est))         # the same numbers for scripts
"""

from .contributions import Contributions, Measure, NotApplicable, role_share_contributions
from .estimator import estimate, method_names, per_record_measures
from .report import estimate_to_json, format_estimate, format_estimate_latex
from .results import (MODALITY_COLUMNS, AblationRow, AccuracyStat, Agreement, Estimate, HeadMap, LensCurve,
                      ModalityTable, Overall, Suppression)

__all__ = [
    "estimate", "method_names", "per_record_measures", "format_estimate", "format_estimate_latex", "estimate_to_json",
    "MODALITY_COLUMNS", "Estimate", "ModalityTable", "Overall", "Suppression", "LensCurve", "AblationRow",
    "Agreement", "HeadMap", "AccuracyStat", "Contributions", "Measure", "NotApplicable",
    "role_share_contributions",
]
