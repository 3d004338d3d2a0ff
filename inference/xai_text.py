"""What each explanation method is called and means, in words: torch-free, so the GUI can list the
methods without importing torch (2 s of a 4.5 s window start)."""

METHODS = ("gradcam", "occlusion", "ig", "uncertainty")
DESCRIPTIONS = {
    "gradcam": "Grad-CAM (HiResCAM variant): where the chosen layer's features raise the label's score in the "
               "region, position by position. Coarse (the layer's resolution); shows what the network "
               "attends to, not a causal proof. Fast, but on the brain sample it ranks grey- and "
               "white-matter evidence no better than chance when blocks are put back (insertion check); "
               "integrated gradients and occlusion pass that check.",
    "occlusion": "Occlusion: how much the label's score in the region drops when each block of the image is "
                 "hidden (blurred), spread over the block's voxels by their first-order share of that drop. "
                 "Each block's total is measured, not estimated; within a block the placement is the "
                 "gradient's; slow.",
    "ig": "Integrated gradients: per-voxel attribution of the label's score, integrated from a flat image. "
          "Fine-grained but noisy; sums to the score difference.",
    "uncertainty": "Predictive entropy over flipped / intensity-jittered copies of the image: high where the "
                   "model's answer changes or is undecided. Not a probability of error.",
}

_RELATIVE = " Colour scale: 0 = no contribution, 1 = this map's strongest 0.5 % (relative to this map alone)."
LEGENDS = {  # one line under the colour bar: what the map means and what it does not
    "gradcam": "Where the network's features raised the label's score in the region." + _RELATIVE +
               " What the model used, not whether it is right.",
    "occlusion": "How much hiding each block lowered the label's score in the region. Placed within the "
                 "block by the gradient." + _RELATIVE + " Not whether the model is right.",
    "ig": "Voxels that raised the label's score, from an empty image to this one." + _RELATIVE +
          " What the model used, not whether it is right.",
    "uncertainty": "Normalised predictive entropy over augmented copies: 0 = certain and consistent, 1 = "
                   "undecided. High means review here; it is not a probability of error.",
}
