"""What can be served: the kind table (kinds.py), one module per model kind, and model sources."""
