"""The engine: admission, queues, continuous batching, and the asyncio bridge per request."""
from .events import Chunk, Failed, RequestDone, SequenceDone
from .llm_engine import LLMEngine
from .scheduler import Scheduler

__all__ = ["Chunk", "Failed", "LLMEngine", "RequestDone", "Scheduler", "SequenceDone"]
