"""Built-in examples, runnable with ``python -m nbflow.examples.<name>``."""
