"""Federated retraining across sites with Flower: each site fine-tunes the shared model on its own
approved corrections and sends back only parameters and scalar metrics (docs/federated.md).
Qt-free; flwr is imported only by the Flower apps and the runtime, never by the rest of the app."""
