"""A Python node whose initialize fails: a load error of its pipeline."""


class OvmsPythonModel:
    def initialize(self, kwargs):
        raise RuntimeError("no license for this node")

    def execute(self, inputs):
        return inputs
