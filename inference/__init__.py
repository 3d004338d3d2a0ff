"""Models: the registry and model cards, networks and architectures, the runner (sliding window on
CPU or GPU), importers (TorchScript, ONNX, MONAI bundles, nnU-Net), explainability and
uncertainty, training and retraining, benchmarks and synthetic training data. torch and MONAI are
imported here, lazily where the window or `--help` could reach them (xai_text and card stay
torch-free). It imports core and formats, never Qt, VTK, store, export, app, cli or gui; store and
export are its siblings and do not import it."""
