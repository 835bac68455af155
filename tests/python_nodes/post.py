"""A Python node that post-processes a model's output: adds `offset` (from the node's params)."""
import numpy as np
from pyovms import Tensor


class OvmsPythonModel:
    def initialize(self, kwargs):
        self.offset = np.float32(kwargs["offset"])
        self.node_name = kwargs["node_name"]

    def execute(self, inputs):
        value = {tensor.name: tensor for tensor in inputs}["value"]
        return [Tensor("shifted", np.asarray(value) + self.offset)]

    def finalize(self):
        pass
