"""StoryCloze accuracy with a binomial confidence interval (see `hf_slm.evaluation.registry` for the card)."""

from hf_slm.evaluation import metric_base


class StoryCloze(metric_base.PairedChoiceMetric):
    """StoryCloze: the positive candidate of each item should score higher."""

    benchmark = "storycloze"
