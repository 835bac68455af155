"""A Python node that streams: `count` partial results, value * 1, value * 2, ..."""
import numpy as np
from pyovms import Tensor


class OvmsPythonModel:
    def initialize(self, kwargs):
        self.count = int(kwargs.get("count", 3))

    def execute(self, inputs):
        (value,) = inputs
        for step in range(1, self.count + 1):
            yield [Tensor("partial", np.asarray(value) * np.float32(step))]
