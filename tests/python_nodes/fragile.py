"""A Python node whose user code raises on negative input."""
import numpy as np


class OvmsPythonModel:
    def execute(self, inputs):
        (value,) = inputs
        if (np.asarray(value) < 0).any():
            raise ValueError("negative input, boom")
        return {"same": np.asarray(value)}
