"""The engine: admission, queues, continuous batching, the device arbiter and the asyncio bridge.

Submodules are imported where used (an engine imports its pipeline's libraries on first use).
"""
