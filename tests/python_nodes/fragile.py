"""A Python node whose user code raises on negative input and calls sys.exit on NaN."""
import sys

import numpy as np


class OvmsPythonModel:
    def execute(self, inputs):
        (value,) = inputs
        if np.isnan(np.asarray(value)).any():
            sys.exit(3)
        if (np.asarray(value) < 0).any():
            raise ValueError("negative input, boom")
        return {"same": np.asarray(value)}
