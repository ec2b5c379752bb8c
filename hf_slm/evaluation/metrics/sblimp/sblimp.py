"""sBLIMP accuracy with a binomial confidence interval (see `hf_slm.evaluation.registry` for the card)."""

from hf_slm.evaluation import metric_base


class SBlimp(metric_base.PairedChoiceMetric):
    """sBLIMP: the positive candidate of each pair should score higher."""

    benchmark = "sblimp"
