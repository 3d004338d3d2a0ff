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


def body_outline(image: np.ndarray, geometry: Geometry, threshold: float) -> tuple[np.ndarray, tuple, np.ndarray]:
    """The patient on a coarse grid: the largest connected object brighter than ``threshold``,
    its holes (lungs, airways, bowel gas) filled axial slice by slice (the airways leave the field
    of view, so a 3D fill would not close the lungs). Returns (mask, strides, closed): ``closed``
    per axial slice, whether its outline had to be closed where the field of view or the scanner's
    padding cuts the body (there the outline is a guess)."""
    axis = axial_axis(geometry)
    strides = tuple(1 if a == axis else max(1, -(-n // MAX_IN_PLANE)) for a, n in enumerate(image.shape))
    coarse = image[tuple(slice(None, None, s) for s in strides)] > threshold
    comp, n = ndimage.label(coarse)
    if n == 0:
        return np.zeros_like(coarse), strides, np.zeros(coarse.shape[axis], bool)
    sizes = np.bincount(comp.ravel())
    sizes[0] = 0
    body = comp == int(np.argmax(sizes))
    pad = padding(np.moveaxis(image[tuple(slice(None, None, s) for s in strides)], axis, 0))
    filled, closed = _filled(np.moveaxis(body, axis, 0), pad)
    return np.moveaxis(filled, 0, axis), strides, closed


#: padding outside the reconstruction circle: a run of one value at or below PADDING_HU touching the
#: image's edge, at least PADDING_SHARE of a slice
PADDING_HU, PADDING_SHARE = -1024, 0.01


def padding(image: np.ndarray) -> np.ndarray | None:
    """Where the scanner wrote padding outside its reconstruction field (axial axis first): one
    constant value at or below PADDING_HU, round a circle or beside a cut; None when there is none."""
    low = float(image.min())
    if low > PADDING_HU:  # air reads about -1000; scanners pad with -1024, -2000, -3024 ...
        return None
    out = np.zeros(image.shape, bool)
    for k, section in enumerate(image):
        runs, n = ndimage.label(section == low)
        if n == 0:
            continue
        edge = np.unique(np.concatenate([runs[0], runs[-1], runs[:, 0], runs[:, -1]]))
        sizes = np.bincount(runs.ravel(), minlength=n + 1)
        keep = np.zeros(n + 1, bool)
        keep[edge] = sizes[edge] >= PADDING_SHARE * section.size
        keep[0] = False
        out[k] = keep[runs]
    return out if out.any() else None


def _filled(body: np.ndarray, pad: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Each cross-section's inside (array axis 0 is axial): background not connected to the slice's
    edge. Where the field of view cuts the body, see ``_closed_at_the_edge``, and where the body
    meets the scanner's padding (``pad``) ``_closed_at_the_field``; which sections were so closed."""
    in_plane = np.zeros((3, 3, 3), bool)
    in_plane[1] = ndimage.generate_binary_structure(2, 1)
    holes, n = ndimage.label(~body, structure=in_plane)
    outside = np.zeros(n + 1, bool)
    outside[np.concatenate([holes[:, 0].ravel(), holes[:, -1].ravel(), holes[:, :, 0].ravel(), holes[:, :, -1].ravel()])] = True
    filled = ~outside[holes]
    cut = body[:, 0].any(1) | body[:, -1].any(1) | body[:, :, 0].any(1) | body[:, :, -1].any(1)
    if pad is not None:
        field = ~pad
        rim = field & ~ndimage.binary_erosion(field, in_plane, border_value=0)
        at_pad = (body & rim & ndimage.binary_dilation(pad, in_plane)).any(axis=(1, 2))
    closed = cut | at_pad if pad is not None else cut
    for k in np.flatnonzero(closed):
        filled[k] = _closed_at_the_field(body[k], rim[k]) if pad is not None and pad[k].any() \
            else _closed_at_the_edge(body[k])
    return filled, closed


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


def _closed_at_the_field(section: np.ndarray, rim: np.ndarray) -> np.ndarray:
    """A cross-section whose body meets the scanner's padding (a patient wider than the
    reconstruction circle). ``rim``: the field's border pixels (next to the padding or on the image's
    edge). As ``_closed_at_the_edge`` with the rim split into four arcs by direction from the field's
    centre (right, front, left, back): a tight field is closed all round, otherwise each arc from its
    first to its last body pixel, so a lung opening onto the padding between chest wall on both sides
    stays inside while a pad under the back, where no body meets the rim, still opens onto it."""
    ring = section.copy()
    yy, xx = np.nonzero(rim)
    on = section[yy, xx]
    if on.sum() >= TIGHT_FIELD * yy.size:
        ring[yy, xx] = True
    elif on.any():
        cy, cx = np.nonzero(rim | ndimage.binary_fill_holes(rim))
        angle = np.arctan2(yy - cy.mean(), xx - cx.mean())
        arc = np.rint(angle / (np.pi / 2)).astype(int) % 4
        along = (angle - arc * np.pi / 2 + np.pi) % (2 * np.pi) - np.pi
        for q in range(4):
            here = (arc == q) & on
            if here.any():
                close = (arc == q) & (along >= along[here].min()) & (along <= along[here].max())
                ring[yy[close], xx[close]] = True
    return ndimage.binary_fill_holes(ring)


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


#: voxels this far outside a plain outline are cut voxel by voxel; nearer, only whole pieces go (the
#: coarse outline misplaced 3-4 % of true lung by a voxel or two on a tryout phantom)
CUT_MARGIN_MM = 10.0


def _grown_in_plane(body: np.ndarray, geometry: Geometry, strides, mm: float) -> np.ndarray:
    """``body`` grown by ``mm`` within each axial plane (on the coarse grid)."""
    axis = axial_axis(geometry)
    spacing_zyx = np.asarray(geometry.spacing, float)[::-1] * np.asarray(strides)
    plane = [a for a in range(body.ndim) if a != axis]
    dist = ndimage.distance_transform_edt(~np.moveaxis(body, axis, 0),
                                          sampling=[1e9] + [float(spacing_zyx[a]) for a in plane])
    return np.moveaxis(dist <= mm, 0, axis)


def remove_outside_body(labels: np.ndarray, image: np.ndarray, geometry: Geometry, values,
                        threshold: float, inside_share: float = 0.5) -> tuple[np.ndarray, int]:
    """Pieces of ``values`` with less than ``inside_share`` of their extent inside the body become
    background; and on axial slices whose outline needed no closing (the field of view and the
    scanner's padding cut no body there), voxels of ``values`` more than CUT_MARGIN_MM outside the
    outline go too. A pad called lung that the network joined to a real lung (at a base, through the
    back) was one piece, 62 % inside, and stayed whole (2.4 L on a tryout phantom, bf16). Where an
    outline was closed it is a guess, and next to it the coarse grid misplaces a voxel or two, so
    neither is cut voxel by voxel. Returns (labels, voxels removed)."""
    wanted = labels == values[0] if len(values) == 1 else np.isin(labels, list(values))
    if not wanted.any():
        return labels, 0
    body, strides, closed = body_outline(image, geometry, threshold)
    coarse = _block_any(wanted, strides)
    pieces, n = ndimage.label(coarse)
    inside = np.bincount(pieces[body], minlength=n + 1)
    total = np.bincount(pieces.ravel(), minlength=n + 1)
    drop = inside < inside_share * total
    drop[0] = False
    shape = [1] * body.ndim
    shape[axial_axis(geometry)] = -1
    if not drop.any() and not (coarse & ~body & ~closed.reshape(shape)).any():
        return labels, 0  # no piece dropped, and nothing outside an unclosed outline to cut (the usual run)
    cut_here = ~_grown_in_plane(body, geometry, strides, CUT_MARGIN_MM) & ~closed.reshape(shape)
    gone = wanted & _upsample(drop[pieces] | cut_here, strides, labels.shape)
    if not gone.any():
        return labels, 0
    out = labels.copy()
    out[gone] = 0
    return out, int(gone.sum())
