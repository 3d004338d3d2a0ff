"""Models: registry, networks, runner, explainability, training. Arrives with the inference issue."""
