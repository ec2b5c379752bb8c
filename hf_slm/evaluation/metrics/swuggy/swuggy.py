"""sWUGGY accuracy with a binomial confidence interval (see `hf_slm.evaluation.registry` for the card)."""

from hf_slm.evaluation import metric_base


class SWuggy(metric_base.PairedChoiceMetric):
    """sWUGGY: the positive candidate of each item should score higher."""

    benchmark = "swuggy"
