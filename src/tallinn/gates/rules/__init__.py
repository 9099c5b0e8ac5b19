"""Rules of the quality gates, one package per gate and one module per rule."""
