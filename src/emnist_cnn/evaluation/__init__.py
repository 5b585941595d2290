"""Evaluation: evaluate() and evaluate_models() (evaluate.py), the metrics (metrics.py), ensembles and test-time
augmentation (ensemble.py), the HTML report (report.py; a line run's: line_report.py; the page: page.py) with
its figures (figures.py) and explanations (explain.py)."""
from .ensemble import Ensemble, ShiftTTA, check_members
from .evaluate import PARTS, evaluate, evaluate_models, predict_logits, summary
from .metrics import metrics_from_logits
from .report import write_report

__all__ = ["Ensemble", "ShiftTTA", "check_members", "PARTS", "evaluate", "evaluate_models", "predict_logits", "summary",
           "metrics_from_logits", "write_report"]
