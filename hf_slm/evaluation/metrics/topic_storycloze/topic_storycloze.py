"""Topic StoryCloze accuracy with a binomial confidence interval (see `hf_slm.evaluation.registry` for the card)."""

from hf_slm.evaluation import metric_base


class TopicStoryCloze(metric_base.PairedChoiceMetric):
    """Topic StoryCloze: the positive candidate of each pair should score higher."""

    benchmark = "topic_storycloze"
