"""What can be served: one module per model kind, plus the registry and model sources."""
