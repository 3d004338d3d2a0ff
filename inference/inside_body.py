"""An anatomical constraint a model card may declare: some structures lie inside the patient.

A lung is enclosed by the chest wall. A model that calls the foam of a table pad or the air
beside the body "lung" has made an error no anatomy allows, so such pieces are removed:
connected pieces of the named labels lying mostly outside the body outline. The card says so
(``inside_body``) and reports Dice with and without it; the model's own output is never
hidden (``segment(..., inside_body=False)``)."""
from __future__ import annotations

import numpy as np
from scipy import ndimage

from core.geometry import Geometry

MAX_IN_PLANE = 128  # the outline is found on a grid this fine at most (~4 mm): a pad is centimetres thick


def axial_axis(geometry: Geometry) -> int:
    """The array axis (z, y, x order) closest to the patient's head-foot direction."""
    index_axis = int(np.argmax(np.abs(geometry.direction[2, :])))  # LPS: row 2 is S
    return 2 - index_axis


def body_outline(image: np.ndarray, geometry: Geometry, threshold: float) -> tuple[np.ndarray, tuple]:
    """The patient on a coarse grid: the largest connected object brighter than ``threshold``,
    its holes (lungs, airways, bowel gas) filled axial slice by slice (the airways leave the field
    of view, so a 3D fill would not close the lungs). Returns (mask, strides)."""
    axis = axial_axis(geometry)
    strides = tuple(1 if a == axis else max(1, -(-n // MAX_IN_PLANE)) for a, n in enumerate(image.shape))
    coarse = image[tuple(slice(None, None, s) for s in strides)] > threshold
    comp, n = ndimage.label(coarse)
    if n == 0:
        return np.zeros_like(coarse), strides
    sizes = np.bincount(comp.ravel())
    sizes[0] = 0
    body = comp == int(np.argmax(sizes))
    return np.moveaxis(_filled(np.moveaxis(body, axis, 0)), 0, axis), strides


def _filled(body: np.ndarray) -> np.ndarray:
    """Each cross-section's inside (array axis 0 is axial): background not connected to the slice's
    edge. Where the field of view cuts the body, see ``_closed_at_the_edge``."""
    in_plane = np.zeros((3, 3, 3), bool)
    in_plane[1] = ndimage.generate_binary_structure(2, 1)
    holes, n = ndimage.label(~body, structure=in_plane)
    outside = np.zeros(n + 1, bool)
    outside[np.concatenate([holes[:, 0].ravel(), holes[:, -1].ravel(), holes[:, :, 0].ravel(), holes[:, :, -1].ravel()])] = True
    filled = ~outside[holes]
    cut = body[:, 0].any(1) | body[:, -1].any(1) | body[:, :, 0].any(1) | body[:, :, -1].any(1)
    for k in np.flatnonzero(cut):
        filled[k] = _closed_at_the_edge(body[k])
    return filled


#: a reconstruction field tighter than the body: body on this share of the image's edge or more
#: (a chest cut at both sides ~30 %, a tight field round the spine ~60 %; arms reaching the edge ~8 %)
TIGHT_FIELD = 0.2


def _closed_at_the_edge(section: np.ndarray) -> np.ndarray:
    """A cross-section cut by the field of view. A field tighter than the body (TIGHT_FIELD) is
    closed all round: a lung there may fill a corner and reach two edges. Otherwise along each edge
    the stretch from the first to the last body pixel is closed, so a lung cut with the chest wall
    stays inside while air beside the body (under an arm, a pad) still reaches the edge."""
    edges = (section[:, 0], section[:, -1], section[0], section[-1])
    ring = np.zeros((section.shape[0] + 2, section.shape[1] + 2), bool)
    ring[1:-1, 1:-1] = section
    if sum(int(e.sum()) for e in edges) >= TIGHT_FIELD * sum(e.size for e in edges):
        ring[[0, -1], :] = ring[:, [0, -1]] = True
    else:
        for where, line in zip(((slice(1, -1), 0), (slice(1, -1), -1), (0, slice(1, -1)), (-1, slice(1, -1))), edges):
            on = np.flatnonzero(line)
            if on.size:
                ring[where][on[0]:on[-1] + 1] = True
    return ndimage.binary_fill_holes(ring)[1:-1, 1:-1]


def _block_any(mask: np.ndarray, strides) -> np.ndarray:
    """True where any voxel of a strides-sized block is: small pieces survive the coarse grid."""
    out = mask[tuple(slice(0, None, s) for s in strides)].copy()
    for offset in np.ndindex(*strides):
        part = mask[tuple(slice(o, None, s) for o, s in zip(offset, strides))]
        out[tuple(slice(0, n) for n in part.shape)] |= part
    return out


def _upsample(coarse: np.ndarray, strides, shape) -> np.ndarray:
    for axis, s in enumerate(strides):
        if s > 1:
            coarse = np.repeat(coarse, s, axis=axis)
    return coarse[tuple(slice(0, n) for n in shape)]


def remove_outside_body(labels: np.ndarray, image: np.ndarray, geometry: Geometry, values,
                        threshold: float, inside_share: float = 0.5) -> tuple[np.ndarray, int]:
    """Pieces of ``values`` with less than ``inside_share`` of their extent inside the body become
    background. Returns (labels, voxels removed)."""
    wanted = labels == values[0] if len(values) == 1 else np.isin(labels, list(values))
    if not wanted.any():
        return labels, 0
    body, strides = body_outline(image, geometry, threshold)
    pieces, n = ndimage.label(_block_any(wanted, strides))
    inside = np.bincount(pieces[body], minlength=n + 1)
    total = np.bincount(pieces.ravel(), minlength=n + 1)
    drop = inside < inside_share * total
    drop[0] = False
    if not drop.any():
        return labels, 0
    gone = wanted & _upsample(drop[pieces], strides, labels.shape)
    out = labels.copy()
    out[gone] = 0
    return out, int(gone.sum())
