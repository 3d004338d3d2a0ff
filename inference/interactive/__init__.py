"""Interactive (promptable) segmentation: prompts in patient coordinates, engines behind one interface."""
