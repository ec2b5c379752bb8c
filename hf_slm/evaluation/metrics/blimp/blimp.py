"""BLiMP accuracy with a binomial confidence interval (see `hf_slm.evaluation.registry` for the card)."""

from hf_slm.evaluation import metric_base


class Blimp(metric_base.PairedChoiceMetric):
    """BLiMP: the positive candidate of each item should score higher."""

    benchmark = "blimp"
