"""OpenAI-compatible API routers."""
