"""The classical engine on phantoms made here: objects defined in patient millimetres on oblique,
anisotropic grids, prompts given in LPS mm as a user's clicks would be."""
import numpy as np
import pytest

from core.errors import Cancelled
from core.geometry import Geometry
from core.progress import CancelToken
from core.volume import Volume
from inference.interactive.engine import engines, make_engine
from inference.interactive.prompts import Box, Lasso, Point, Prompts, Scribble
from tests.conftest import rotation

GEO = Geometry((44, 40, 22), spacing=(0.9, 0.8, 2.0), origin=(-12.0, 30.0, -40.0),
               direction=rotation(0.25, -0.15, 0.4))


def _world_grid(geo):
    nx, ny, nz = geo.size
    k, j, i = np.meshgrid(np.arange(nz), np.arange(ny), np.arange(nx), indexing="ij")
    return geo.index_to_world(np.stack([i, j, k], -1).astype(np.float64))


def _ball(w, centre, r):
    return np.sum((w - np.asarray(centre)) ** 2, axis=-1) <= r * r


def _centre(geo):
    return geo.index_to_world((np.asarray(geo.size) - 1) / 2.0)


def _image(geo, objects, seed=0, noise=8.0):
    rng = np.random.default_rng(seed)
    img = np.zeros(geo.shape_zyx, np.float32)
    for mask, value in objects:
        img[mask] = value
    return Volume(img + rng.normal(0, noise, img.shape).astype(np.float32), geo, modality="MR")


def dice(a, b):
    return 2 * np.sum(a & b) / max(np.sum(a) + np.sum(b), 1)


def _lps(p):
    return tuple(float(v) for v in p)


@pytest.fixture(scope="module")
def two_blobs():
    """Object A, and a false region B of the same intensity joined to it by a neck."""
    w = _world_grid(GEO)
    c = _centre(GEO)
    u = GEO.direction[:, 0]  # along the grid's x axis, in LPS
    a_c, b_c = c - 6 * u, c + 6.5 * u
    a = _ball(w, a_c, 7.5)
    b = _ball(w, b_c, 6.0) & ~a
    vol = _image(GEO, [(a | b, 100.0)])
    return vol, a, b, _lps(a_c), _lps(b_c)


def test_registered_and_available():
    info = engines()["classical"]
    assert info.available() is None
    assert make_engine("classical").name == "classical"


def test_positive_click_finds_the_object(two_blobs):
    vol, a, b, a_c, _ = two_blobs
    mask = make_engine("classical").open(vol).predict(Prompts((Point(a_c),)))
    assert mask.shape == vol.geometry.shape_zyx and mask.dtype == bool
    assert mask[a].mean() > 0.9  # the bridge leaks into B: the negative click's job
    assert mask[~(a | b)].mean() < 0.01


def test_negative_click_removes_a_false_region_and_leaves_the_object(two_blobs):
    vol, a, b, a_c, b_c = two_blobs
    state = make_engine("classical").open(vol)
    first = Prompts((Point(a_c),))
    before = state.predict(first)
    assert before[b].mean() > 0.5, "premise: the first click leaks into B"
    after = state.predict(first.add(Point(b_c, positive=False)), before)
    assert after[b].mean() < 0.1
    assert after[a].mean() > 0.9
    assert not np.any(after & ~before)  # a negative click only removes


def test_a_click_far_away_leaves_the_rest_alone(two_blobs):
    vol, a, b, a_c, b_c = two_blobs
    state = make_engine("classical").open(vol)
    previous = np.zeros(vol.geometry.shape_zyx, bool)
    previous[2:5, 3:8, 3:9] = True  # something drawn by hand in a corner, far from A
    previous[10, 20, 20] ^= True
    mask = state.predict(Prompts((Point(a_c),)), previous)
    assert np.array_equal(mask[2:5, 3:8, 3:9], previous[2:5, 3:8, 3:9])
    assert mask[a].mean() > 0.9


def test_box_on_one_slice_of_an_oblique_volume_gives_a_3d_object():
    w = _world_grid(GEO)
    c = _centre(GEO)
    # an ellipsoid tilted against the grid: radii 11, 8, 9 mm
    rot = rotation(0.5, 0.3, -0.2)
    q = (w - c) @ rot
    obj = (q[..., 0] / 11) ** 2 + (q[..., 1] / 8) ** 2 + (q[..., 2] / 9) ** 2 <= 1
    other = _ball(w, c + 17 * GEO.direction[:, 1], 4.0)  # a neighbour the box leaves out
    vol = _image(GEO, [(obj, 80.0), (other, 80.0)], seed=1)
    k = int(np.argmax(obj.sum(axis=(1, 2))))  # the slice with the largest cross-section
    ys, xs = np.nonzero(obj[k])
    lo = GEO.index_to_world([xs.min() - 1, ys.min() - 1, k])
    hi = GEO.index_to_world([xs.max() + 1, ys.max() + 1, k])
    mask = make_engine("classical").open(vol).predict(Prompts((Box(_lps(lo), _lps(hi)),)))
    slices = np.flatnonzero(mask.any(axis=(1, 2)))
    assert len(slices) >= 0.8 * len(np.flatnonzero(obj.any(axis=(1, 2))))  # grew through the volume
    assert dice(mask, obj) > 0.85
    assert mask[other].mean() < 0.1


def test_lasso_and_scribbles():
    w = _world_grid(GEO)
    c = _centre(GEO)
    obj = _ball(w, c, 8.0)
    vol = _image(GEO, [(obj, 60.0)], seed=2)
    k = GEO.size[2] // 2
    centre_ijk = GEO.world_to_index(c)
    ring = [GEO.index_to_world([centre_ijk[0] + 10 * np.cos(t), centre_ijk[1] + 11 * np.sin(t), k])
            for t in np.linspace(0, 2 * np.pi, 12, endpoint=False)]
    state = make_engine("classical").open(vol)
    mask = state.predict(Prompts((Lasso(tuple(_lps(p) for p in ring)),)))
    assert dice(mask, obj) > 0.85
    scribble = Scribble((_lps(c - 2 * GEO.direction[:, 0]), _lps(c + 2 * GEO.direction[:, 0])))
    assert dice(state.predict(Prompts((scribble,))), obj) > 0.85


def test_a_2d_image_works():
    geo = Geometry((70, 60, 1), spacing=(0.3, 0.3, 1.0), origin=(5.0, -3.0, 0.0))
    w = _world_grid(geo)
    centre = geo.index_to_world([30, 28, 0])
    disk = _ball(w, centre, 4.5)
    rng = np.random.default_rng(3)
    img = np.where(disk, 40.0, 120.0) + rng.normal(0, 10, disk.shape)  # a dark lesion in bright tissue
    vol = Volume(img.astype(np.float32), geo, modality="US")
    state = make_engine("classical").open(vol)
    mask = state.predict(Prompts((Point(_lps(centre)),)))
    assert mask.shape == (1, 60, 70) and dice(mask, disk) > 0.9
    lo, hi = geo.index_to_world([13, 11, 0]), geo.index_to_world([47, 45, 0])
    assert dice(state.predict(Prompts((Box(_lps(lo), _lps(hi)),))), disk) > 0.9


def test_colour_image_works():
    geo = Geometry((50, 40, 1))
    w = _world_grid(geo)
    disk = _ball(w, geo.index_to_world([25, 20, 0]), 8)
    rgb = np.zeros((1, 40, 50, 3), np.uint8)
    rgb[disk] = (200, 180, 160)
    mask = make_engine("classical").open(Volume(rgb, geo)).predict(
        Prompts((Point(_lps(geo.index_to_world([25, 20, 0]))),)))
    assert dice(mask, disk) > 0.95


def test_cancel(two_blobs):
    vol, _a, _b, a_c, _ = two_blobs
    token = CancelToken()
    token.cancel()
    with pytest.raises(Cancelled):
        make_engine("classical").open(vol).predict(Prompts((Point(a_c),)), cancel=token)


def test_accepted_objects_prompts_are_saved_with_the_correction(two_blobs, tmp_path):
    from app.actions import review
    from app.actions.interactive import InteractiveObject
    from app.session import CaseSession
    from core.labels import LabelMap
    from store.corrections import CorrectionsStore

    vol, a, b, a_c, b_c = two_blobs
    s = CaseSession()
    s.set_image(vol, str(tmp_path / "mr.nii.gz"))
    s.set_labelmap(LabelMap.empty_like(vol.geometry))
    obj = InteractiveObject(s, engine="classical")
    for prompt in (Point(a_c), Point(b_c, positive=False)):
        prompts = obj.ask(obj.prompts.add(prompt))
        assert obj.show(prompts, *obj.compute(prompts))
    assert obj.accept(3) is not None
    assert (s.labelmap.array[a] == 3).mean() > 0.9 and (s.labelmap.array[b] == 3).mean() < 0.1
    case_id, _n = review.save_correction(review.correction_request(s, "approved", "dr.a"), tmp_path / "store")
    with CorrectionsStore(tmp_path / "store") as st:
        edits = st.latest(case_id)["edits"]
    assert edits["interactive"] == [{"engine": "classical", "segment": 3, "points": 2, "boxes": 0, "scribbles": 0,
                                     "lassos": 0, "prompts": 2}]
    assert edits["3"]["added"] == int(np.sum(s.labelmap.array == 3))  # the voxel summary beside it


def test_benchmark_protocol_clicks_the_centre_of_the_largest_error():
    from inference.interactive.benchmark import Case, corrective_click, interior_point, run_case

    truth = np.zeros((12, 30, 30), bool)
    truth[2:10, 5:25, 5:25] = True
    mask = truth.copy()
    mask[3:9, 6:12, 6:12] = False  # missed: 216 voxels
    mask[0:2, 26:29, 26:29] = True  # false: 18 voxels
    (z, y, x), positive = corrective_click(truth, mask, np.array([2.0, 1.0, 1.0]))
    assert positive and 4 <= z <= 7 and y in (8, 9) and x in (8, 9)  # 3 mm from the missed block's sides
    mask[3:9, 6:12, 6:12] = True
    (z, y, x), positive = corrective_click(truth, mask, np.ones(3))
    assert not positive and 0 <= z < 2 and 26 <= y < 29 and 26 <= x < 29
    assert corrective_click(truth, truth, np.ones(3)) is None
    disk = np.zeros((1, 20, 20), bool)
    disk[0, 4:15, 6:17] = True  # a 2D image: the interior point is in the plane
    assert interior_point(disk, np.ones(3)) == (0, 9, 11)
    # the whole protocol with the classical engine: 6 Dice values, the object found
    w = _world_grid(GEO)
    obj = _ball(w, _centre(GEO), 8.0)
    vol = _image(GEO, [(obj, 90.0)], seed=4)
    run = run_case(make_engine("classical").open(vol), Case("t", "ball", vol, obj), "click", "classical")
    assert len(run.dice) == 6 and len(run.seconds) >= 1 and run.dice[0] > 0.85 and run.prompts_to(0.85) == 1


def test_corrective_click_on_a_one_slice_error_of_a_volume():
    from inference.interactive.benchmark import corrective_click

    truth = np.zeros((10, 20, 20), bool)
    truth[2:8, 4:16, 4:16] = True
    mask = truth.copy()
    mask[5, 6:14, 6:14] = False  # a missed region one slice thick
    (z, y, x), positive = corrective_click(truth, mask, np.array([3.0, 1.0, 1.0]))
    assert positive and z == 5 and 8 <= y <= 11 and 8 <= x <= 11  # 3 mm inside: as deep as the slice allows
