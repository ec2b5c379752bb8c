"""SALMon accuracy with a binomial confidence interval (see `hf_slm.evaluation.registry` for the card)."""

from hf_slm.evaluation import metric_base


class Salmon(metric_base.PairedChoiceMetric):
    """SALMon: the positive candidate of each item should score higher."""

    benchmark = "salmon"
