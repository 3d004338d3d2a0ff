"""Reproducible training of the shipped default models on generated data (`main.py train`)."""
