"""A 3D series over time (4D NIfTI): opens as its first time point with exact geometry, reads the
others one at a time (never the whole series), scaled and oriented as the first; cine stepping."""
import nibabel as nib
import numpy as np
import pytest

from core.cine import MIN_FPS, Cine
from core.errors import FormatError
from core.time_series import show_time_point, time_series_of
from core.viewer_model import ViewerModel
from formats.io import read_image

SHAPE = (20, 16, 8, 5)  # x, y, z, t


def _series(path, slope=None, units="sec", dt=2.0):
    rng = np.random.default_rng(0)
    data = rng.integers(-500, 1000, SHAPE).astype(np.int16)
    affine = np.array([[1.5, 0, 0, -10], [0, 1.5, 0, 20], [0, 0, 3.0, 5], [0, 0, 0, 1]])
    img = nib.Nifti1Image(data, affine)
    img.header.set_xyzt_units("mm", units)
    img.header["pixdim"][4] = dt
    if slope is not None:
        img.header.set_slope_inter(*slope)
    nib.save(img, path)
    return data


def _zyx(data_xyz, k):
    """Time point k as the reader's [z, y, x] array (RAS -> LPS flips the x and y axes' direction,
    not the voxel order)."""
    return np.transpose(data_xyz[..., k], (2, 1, 0))


@pytest.mark.parametrize("name", ["dyn.nii", "dyn.nii.gz"])
def test_a_4d_nifti_opens_as_a_time_series_read_one_volume_at_a_time(tmp_path, name):
    data = _series(tmp_path / name)
    vol = read_image(tmp_path / name)
    ts = time_series_of(vol)
    assert ts is not None and ts.count == 5 and not vol.warnings  # no "showing the first" any more
    assert vol.array.shape == (8, 16, 20) and vol.array.nbytes == 8 * 16 * 20 * 2  # one time point held
    np.testing.assert_array_equal(vol.array, _zyx(data, 0))
    assert ts.reads == []  # opening read the first time point only (in the decoding child)
    ref = nib.load(tmp_path / name)  # geometry as nibabel's affine says, in LPS
    lps = np.diag([-1, -1, 1, 1]) @ ref.affine
    np.testing.assert_allclose(vol.geometry.affine, lps, atol=1e-6)
    for k in (3, 1, 4, 0, 2):  # forwards and backwards: each read is that volume's voxels
        np.testing.assert_array_equal(ts.read(k), _zyx(data, k))
    assert ts.reads == [3, 1, 4, 0, 2]
    assert ts.frame_time_ms == pytest.approx(2000.0) and ts.label(2) == "t 3/5  4 s"


def test_time_points_are_scaled_like_the_first(tmp_path):
    data = _series(tmp_path / "scaled.nii.gz", slope=(0.5, 10.0))
    vol = read_image(tmp_path / "scaled.nii.gz")
    ts = time_series_of(vol)
    assert vol.array.dtype == np.float32 and ts.read(3).dtype == np.float32
    np.testing.assert_allclose(vol.array, _zyx(data, 0) * 0.5 + 10)
    np.testing.assert_allclose(ts.read(3), _zyx(data, 3) * 0.5 + 10)


def test_no_time_unit_means_no_time_and_a_chosen_rate(tmp_path):
    _series(tmp_path / "t.nii", units="unknown")
    ts = time_series_of(read_image(tmp_path / "t.nii"))
    assert ts.frame_time_ms is None and ts.label(1) == "t 2/5"
    cine = Cine.for_time_series(ts)
    assert cine.file_fps is None and cine.frames == 5 and cine.step(4) == 0  # loops
    _series(tmp_path / "slow.nii", dt=10.0)  # dynamic contrast, 10 s apart: the slowest rate
    assert Cine.for_time_series(time_series_of(read_image(tmp_path / "slow.nii"))).fps == MIN_FPS


def test_a_series_cut_short_after_opening_names_the_file(tmp_path):
    path = tmp_path / "cut.nii"
    _series(path)
    ts = time_series_of(read_image(path))
    with open(path, "r+b") as fh:  # the file changed on disk while open
        fh.truncate(path.stat().st_size - 100)
    with pytest.raises(FormatError, match="cut.nii.*time point 5.*truncated"):
        ts.read(4)
    np.testing.assert_array_equal(ts.read(1).shape, (8, 16, 20))


def test_the_viewer_model_swaps_time_points_keeping_crosshair_and_labels(tmp_path):
    from core.labels import LabelMap, LabelTable

    data = _series(tmp_path / "v.nii")
    vol = read_image(tmp_path / "v.nii")
    model = ViewerModel()
    model.set_volume(vol)
    lab = LabelMap(np.zeros(vol.geometry.shape_zyx, np.uint8), vol.geometry, LabelTable())
    lab.array[2:4, 3:6, 4:9] = 1
    model.set_labelmap(lab)
    model.set_cursor_index((5, 6, 2))
    events = []
    for name in ("image", "window", "time"):
        model.subscribe(name, lambda name=name: events.append(name))
    window = model.window
    assert show_time_point(model, 3) and not show_time_point(model, 3)
    assert events == ["window", "time"]  # no "image": views keep zoom and slices
    assert model.volume is vol and vol.metadata["time_point"] == 3
    np.testing.assert_array_equal(vol.array, _zyx(data, 3))
    np.testing.assert_array_equal(model.image, model.display.to_display(_zyx(data, 3)))
    assert list(model.cursor) == [5, 6, 2] and model.labelmap is lab and model.window is window


def test_select_swaps_the_time_point_and_refuses_one_out_of_range(tmp_path):
    from core.errors import DelineateError
    from core.time_series import select

    data = _series(tmp_path / "s.nii")
    vol = read_image(tmp_path / "s.nii")
    assert select(vol, 4) is vol and vol.metadata["time_point"] == 4
    np.testing.assert_array_equal(vol.array, _zyx(data, 4))
    with pytest.raises(DelineateError, match="time point 6 asked for; the series has 5"):
        select(vol, 5)


def test_cli_info_counts_time_points_and_segment_takes_a_frame(tmp_path):
    import json
    import subprocess
    import sys
    from pathlib import Path

    root = Path(__file__).resolve().parents[1]
    _series(tmp_path / "dyn.nii.gz")

    def run(*args):
        return subprocess.run([sys.executable, str(root / "main.py"), *args], capture_output=True, text=True,
                              timeout=300, cwd=root)

    out = run("info", str(tmp_path / "dyn.nii.gz"))
    assert out.returncode == 0 and "time points: 5, 2 s apart" in out.stdout and "warning" not in out.stdout
    assert json.loads(run("info", "--json", str(tmp_path / "dyn.nii.gz")).stdout)["time_points"] == 5
    bad = run("segment", str(tmp_path / "dyn.nii.gz"), str(tmp_path / "seg.nii.gz"), "--frame", "9")
    assert bad.returncode != 0 and "time point 9 asked for; the series has 5" in bad.stderr
    assert "Traceback" not in bad.stderr and not (tmp_path / "seg.nii.gz").exists()


def test_a_gzipped_series_steps_back_from_the_nearest_boundary_not_the_start(tmp_path):
    data = _series(tmp_path / "z.nii.gz")
    ts = time_series_of(read_image(tmp_path / "z.nii.gz"))
    one = 8 * 16 * 20 * 2
    np.testing.assert_array_equal(ts.read(4), _zyx(data, 4))  # the first pass inflates everything before it
    stream = ts._stream
    before = stream.inflated
    np.testing.assert_array_equal(ts.read(2), _zyx(data, 2))
    np.testing.assert_array_equal(ts.read(1), _zyx(data, 1))
    assert stream.inflated - before == 2 * one  # each step back: one volume from its remembered boundary


def test_heat_maps_stay_with_the_time_point_they_were_made_on(tmp_path):
    from core.overlay import HeatMap

    _series(tmp_path / "h.nii")
    vol = read_image(tmp_path / "h.nii")
    model = ViewerModel()
    model.set_volume(vol)
    show_time_point(model, 2)
    values = np.random.default_rng(3).random(vol.geometry.shape_zyx)
    made = [HeatMap.from_values(name, values, vol.geometry) for name in ("saliency", "uncertainty")]
    for heat in made:
        model.add_heatmap(heat)
    model.set_active_heatmap("saliency")
    show_time_point(model, 3)  # another time point's voxels: the maps made on t 3/5 are not shown over them
    assert model.heatmaps == [] and model.active_heatmap() is None
    show_time_point(model, 0)
    assert model.heatmaps == []
    show_time_point(model, 2)  # back where they were made: the same maps, the same one active
    assert [h.name for h in model.heatmaps] == ["saliency", "uncertainty"]
    assert all(a is b for a, b in zip(model.heatmaps, made)) and model.active_heat == "saliency"


def test_the_stored_correction_records_its_time_point(tmp_path):
    from app.actions.review import correction_request, save_correction
    from app.session import CaseSession
    from core.labels import Label, LabelMap, LabelTable
    from store.corrections import CorrectionsStore, image_hash

    data = _series(tmp_path / "c.nii")
    session = CaseSession()
    session.set_image(read_image(tmp_path / "c.nii"), str(tmp_path / "c.nii"))
    show_time_point(session.viewer, 3)
    lab = np.zeros(session.volume.geometry.shape_zyx, np.uint8)
    lab[2:5, 4:9, 3:12] = 1
    session.set_labelmap(LabelMap(lab, session.volume.geometry, LabelTable((Label(1, "lesion", (255, 0, 0)),))))
    req = correction_request(session, "in_review", reviewer="dr.t")
    show_time_point(session.viewer, 1)  # stepping on while the save runs does not change what is saved
    case_id, _n = save_correction(req, tmp_path / "store")
    with CorrectionsStore(tmp_path / "store") as store:
        edits = store.latest(case_id)["edits"]
        image, _ai, _fixed = store.load(case_id)
        assert store.case(case_id).image_hash == image_hash(req.volume)
    assert edits["time_point"] == 3 and edits["time_points"] == 5  # 0-based: the fourth time point
    np.testing.assert_array_equal(image.array, _zyx(data, 3))


def test_a_heat_map_finished_after_a_step_stays_with_its_time_point(tmp_path):
    """An explanation started on t 2/5 that ends while t 4/5 is on screen is not laid over t 4's
    voxels: it waits with t 2 and shows on coming back."""
    from core.overlay import HeatMap
    from core.time_series import add_heatmap_made_at, shown_time_point

    _series(tmp_path / "h.nii")
    vol = read_image(tmp_path / "h.nii")
    model = ViewerModel()
    model.set_volume(vol)
    show_time_point(model, 1)
    started_on = shown_time_point(vol)
    show_time_point(model, 3)  # the user steps on while the worker explains
    heat = HeatMap.from_values("saliency", np.ones(vol.geometry.shape_zyx, np.float32), vol.geometry)
    assert not add_heatmap_made_at(model, heat, started_on) and model.heatmaps == []
    show_time_point(model, 1)
    assert model.heatmaps == [heat]
    assert add_heatmap_made_at(model, HeatMap.from_values("u", np.ones(vol.geometry.shape_zyx, np.float32), vol.geometry), 1)
    assert [h.name for h in model.heatmaps] == ["saliency", "u"]


def test_a_model_run_finished_after_a_step_goes_back_to_its_time_point(tmp_path):
    """A segmentation of t 2/5 that lands while t 4/5 is on screen takes the viewer back to t 2 (its
    mask belongs with t 2's voxels), and the stored correction says which time point the AI draft
    was made from as well as the one it was saved on."""
    from types import SimpleNamespace

    from app.actions.review import correction_request
    from app.session import CaseSession
    from core.labels import Label, LabelMap, LabelTable
    from inference.registry import Registry

    data = _series(tmp_path / "m.nii")
    session = CaseSession()
    session.set_image(read_image(tmp_path / "m.nii"), str(tmp_path / "m.nii"))
    show_time_point(session.viewer, 1)
    lab = np.zeros(session.volume.geometry.shape_zyx, np.uint8)
    lab[1:4, 2:6, 3:9] = 1
    run = SimpleNamespace(labels=LabelMap(lab, session.volume.geometry, LabelTable((Label(1, "lesion", (255, 0, 0)),))),
                          card=Registry().get("brain-tissue"))
    show_time_point(session.viewer, 3)  # the user steps on while the worker segments t 2
    assert session.set_run(run, (), time_point=1) is True
    assert time_series_of(session.volume).shown == 1 and session.run is run
    np.testing.assert_array_equal(session.volume.array, _zyx(data, 1))
    assert session.set_run(run, (), time_point=1) is False  # already there: nothing moves
    show_time_point(session.viewer, 4)  # the reviewer corrects it on another time point and saves there
    edits = correction_request(session, "in_review", reviewer="dr.t").edits
    assert edits["time_point"] == 4 and edits["model_time_point"] == 1
