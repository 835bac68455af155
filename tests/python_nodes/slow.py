"""A slow Python node: marks each call's start in `marks` (a folder), sleeps `seconds`, returns
value * `factor`; `finalize` leaves a mark too."""
import time
import uuid
from pathlib import Path

import numpy as np


class OvmsPythonModel:
    def initialize(self, kwargs):
        self.marks = Path(kwargs["marks"])
        self.seconds = float(kwargs["seconds"])
        self.factor = np.float32(kwargs["factor"])

    def execute(self, inputs):
        (value,) = inputs
        (self.marks / f"started-{self.factor}-{uuid.uuid4().hex}").touch()
        time.sleep(self.seconds)
        return {"out": np.asarray(value) * self.factor}

    def finalize(self):
        (self.marks / f"finalized-{self.factor}").touch()
