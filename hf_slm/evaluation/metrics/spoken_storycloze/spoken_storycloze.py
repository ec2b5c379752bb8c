"""Spoken StoryCloze accuracy with a binomial confidence interval (see `hf_slm.evaluation.registry` for the card)."""

from hf_slm.evaluation import metric_base


class SpokenStoryCloze(metric_base.PairedChoiceMetric):
    """Spoken StoryCloze: the positive candidate of each pair should score higher."""

    benchmark = "spoken_storycloze"
