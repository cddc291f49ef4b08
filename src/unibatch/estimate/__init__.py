"""Cost estimates before sending: tokens counted offline, priced per model."""

from unibatch.estimate.estimator import Estimate, Estimator, ModelEstimate, estimate
from unibatch.estimate.tokens import input_tokens

__all__ = ["Estimate", "Estimator", "ModelEstimate", "estimate", "input_tokens"]
