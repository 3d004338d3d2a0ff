"""The ultrasound lesion default: generated B-mode images at random fields of view and native pixel
sizes, brought to the model's pixel size the way the runner brings a user's image (so training sees
the runner's own resampling), evaluated in range, out of range and per image size."""
from __future__ import annotations

import numpy as np

from inference.training.train import Recipe

SIZES = (128, 256, 480, 800, 1024)  # pixel counts over one field of view, for the per-size metric
SIZE_FOV_MM = 48.0


def _np_rng(rng):
    import torch

    return np.random.default_rng(int(torch.randint(0, 2**31 - 1, (1,), generator=rng)))


def _case(img, mask, pixel_mm):
    from core.labels import LabelMap
    from core.volume import Volume
    from inference.training.synth_us import LABELS

    vol = Volume.from_array(img[None], spacing=(pixel_mm, pixel_mm, 1.0), modality="US")
    return vol, LabelMap(mask[None], vol.geometry, LABELS)


def us():
    from core.resample import resample
    from inference.runner import image_axes_grid, normalise
    from inference.training.synth_us import IN_RANGE, LABELS, OUT_OF_RANGE, PIXEL_MM, image, random_case

    norm = {"kind": "percentile", "low": 1.0, "high": 99.0}
    spacing = [PIXEL_MM, PIXEL_MM, 1.0]

    def sample(rng):
        img, mask, pixel = random_case(_np_rng(rng))
        vol, truth = _case(img, mask, pixel)
        grid = image_axes_grid(vol.geometry, spacing)
        x = resample(img[None].astype(np.float32), vol.geometry, grid, order=1, fill=float(img.min()))[0]
        y = resample(mask[None].astype(np.float32), vol.geometry, grid, order=1, fill=0.0)[0] > 0.5
        return normalise(x, norm), y.astype(np.uint8)

    def cases(n, seed, ranges=IN_RANGE):
        rng = np.random.default_rng(seed)
        return [_case(*random_case(rng, ranges)) for _ in range(n)]

    def extra(net, card):
        from inference.card import Metric
        from inference.training.train import case_dice

        out_cases = cases(8, 30_000, OUT_OF_RANGE)
        d = case_dice(net, card, out_cases)[:, 0]
        r = OUT_OF_RANGE
        metrics = [Metric("Dice Lesion, out of range", float(d.mean()), (
            f"8 generated cases (seed 30000) outside the training ranges: pixel {r.pixel_mm[0]}-{r.pixel_mm[1]} mm, "
            f"field of view {r.fov_mm[0]:.0f}-{r.fov_mm[1]:.0f} mm, lesion contrast {r.hypo_db[0]:.0f} to "
            f"{r.hypo_db[1]:.0f} dB (hypo) / +{r.hyper_db[0]} to +{r.hyper_db[1]:.0f} dB (hyper), coarser speckle "
            f"(PSF {r.psf_axial_mm[0]}-{r.psf_lateral_mm[1]} mm), noise floor {r.noise_db[0]:.0f} to "
            f"{r.noise_db[1]:.0f} dB, dynamic range {r.dynamic_range_db[0]:.0f}-{r.dynamic_range_db[1]:.0f} dB"))]
        for size in SIZES:  # the same 8 scenes at each pixel count
            px = SIZE_FOV_MM / size
            sized = [_case(*image(np.random.default_rng([40_000, k]), size, pixel_mm=px), px) for k in range(8)]
            metrics.append(Metric(f"Dice Lesion, {size} px", float(case_dice(net, card, sized)[:, 0].mean()),
                                  f"the same 8 generated scenes (seeds [40000, 0-7]) over a {SIZE_FOV_MM:.0f} mm "
                                  f"field of view imaged at {size} x {size} px ({px:.3f} mm pixels)"))
        return metrics

    def where_it_fails(net, card):
        from inference.training.train import case_dice

        held = cases(24, 50_000)
        d = case_dice(net, card, held)[:, 0]
        radius = np.array([np.sqrt(t.array.sum() * t.geometry.spacing[0] ** 2 / np.pi) for _, t in held])
        small = radius < 3.0
        return (f"Where it fails, on 24 in-range generated cases (seed 50000): Dice {d[~small].mean():.2f} on "
                f"lesions of 3 mm equivalent radius or more ({int((~small).sum())}), {d[small].mean():.2f} on "
                f"smaller ones ({int(small.sum())}); {int((d < 0.5).sum())} cases below 0.5. Out of range "
                "(faint lesions within 6 dB, coarse speckle, heavy noise, very fine pixels) it mostly misses.")

    r = IN_RANGE
    return Recipe(
        id="us-lesion-2d", version="1.0.0", name="Ultrasound lesion (2D), speckle-phantom-trained",
        architecture="AttentionUnet", parameters={"channels": [16, 32, 64, 128], "strides": [2, 2, 2]},
        spatial_dims=2, modality="US", patch_size=[128, 128], spacing=spacing, orientation=None, labels=LABELS,
        normalisation=norm, iterations=4000, batch=16, lr=3e-3,
        training_data=(
            f"Generated only (inference/training/synth_us.py): B-mode-like images drawn in mm and dB, field of "
            f"view {r.fov_mm[0]:.0f}-{r.fov_mm[1]:.0f} mm, native pixel {r.pixel_mm[0]}-{r.pixel_mm[1]} mm "
            f"(so {int(r.fov_mm[0] / r.pixel_mm[1])} to {int(r.fov_mm[1] / r.pixel_mm[0])} px a side), then "
            f"resampled to the model's {PIXEL_MM} mm pixels as the runner does. Tissue layers, texture and "
            f"specular interfaces; 1-3 lesions of {r.lesion_radius_mm[0]}-{r.lesion_radius_mm[1]} mm radius, "
            f"hypoechoic ({r.hypo_db[0]:.0f} to {r.hypo_db[1]:.0f} dB) or hyperechoic (+{r.hyper_db[0]:.0f} to "
            f"+{r.hyper_db[1]:.0f} dB, {100 * r.hyper_fraction:.0f} %), with posterior enhancement or shadowing; "
            f"complex-Gaussian scatterers through a PSF of {r.psf_axial_mm[0]}-{r.psf_axial_mm[1]} mm axial and "
            f"{r.psf_lateral_mm[0]}-{r.psf_lateral_mm[1]} mm lateral; attenuation {r.attenuation_db_cm[0]}-"
            f"{r.attenuation_db_cm[1]} dB/cm, noise floor {r.noise_db[0]:.0f} to {r.noise_db[1]:.0f} dB, TGC "
            f"compensating {r.tgc_compensation[0]}-{r.tgc_compensation[1]} of it with +-{r.tgc_slider_db:.0f} dB "
            f"sliders, gain {r.gain_db[0]:.0f} to +{r.gain_db[1]:.0f} dB, dynamic range "
            f"{r.dynamic_range_db[0]:.0f}-{r.dynamic_range_db[1]:.0f} dB; a sector mask in "
            f"{100 * r.sector_fraction:.0f} %. Held-out cases are drawn from the same ranges at their native "
            f"pixel sizes and run through the runner."),
        notes=(f"Works at {PIXEL_MM} mm pixels (spacing): every image is resampled to it from its own pixel "
               "size, so the image must carry its physical pixel size (DICOM Pixel Spacing or ultrasound "
               "region deltas, NIfTI pixdim, PNG/TIFF resolution). An image without one is read as 1 mm "
               "pixels: a lesion then looks about 3x larger than it is and is likely missed or over-"
               "segmented; set the pixel size first. Never saw real ultrasound: shapes, speckle statistics and "
               "artefacts are simplified; isoechoic lesions, thin-halo nodules, Doppler overlays, calipers "
               "and text were never seen."),
        sample=sample, heldout=cases, extra_metrics=extra, describe=where_it_fails)
