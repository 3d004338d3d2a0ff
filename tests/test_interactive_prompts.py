"""Prompts in LPS mm land on the right voxel of any grid; bad prompts get one clear line."""
import json

import numpy as np
import pytest

from core.geometry import Geometry
from inference.interactive.prompts import Box, Lasso, Point, PromptError, Prompts, Scribble, rasterise
from tests.conftest import rotation

OBLIQUE = Geometry((24, 20, 9), spacing=(0.7, 1.3, 3.5), origin=(-41.0, 17.5, 88.0),
                   direction=rotation(0.3, -0.2, 0.5))


def _world(geo, k, j, i):
    return tuple(float(v) for v in geo.index_to_world([i, j, k]))


@pytest.mark.parametrize("zyx", [(0, 0, 0), (4, 11, 17), (8, 19, 23), (3, 2, 20)])
def test_point_in_lps_lands_in_its_voxel_on_an_oblique_anisotropic_grid(zyx):
    # nudged by under half a voxel along each index axis: still that voxel
    i, j, k = zyx[2] + 0.3, zyx[1] - 0.4, zyx[0] + 0.45
    lps = tuple(OBLIQUE.index_to_world([i, j, k]))
    r = rasterise(Prompts((Point(lps),)), OBLIQUE, point_radius_vox=0)
    assert np.argwhere(r.positive).tolist() == [list(zyx)]
    assert r.box == tuple(slice(c, c + 1) for c in zyx)


def test_negative_point_and_radius():
    lps = _world(OBLIQUE, 4, 10, 12)
    r = rasterise(Prompts((Point(lps, positive=False),)), OBLIQUE, point_radius_vox=1)
    assert not r.positive.any()
    assert r.negative[4, 10, 12] and r.negative.sum() == 7  # a one-voxel ball: centre and 6 faces


def test_box_on_one_slice_spans_its_corners_one_slice_thick():
    r = rasterise(Prompts((Box(_world(OBLIQUE, 5, 3, 4), _world(OBLIQUE, 5, 12, 15)),)), OBLIQUE)
    zs, ys, xs = np.nonzero(r.box_mask)
    assert set(zs) == {5} and (ys.min(), ys.max(), xs.min(), xs.max()) == (3, 12, 4, 15)
    assert r.box_mask.sum() == 10 * 12


def test_lasso_fills_its_polygon_on_its_slice():
    corners = [_world(OBLIQUE, 2, j, i) for j, i in ((2, 2), (2, 14), (12, 14), (12, 2))]
    r = rasterise(Prompts((Lasso(tuple(corners)),)), OBLIQUE)
    assert set(np.nonzero(r.box_mask)[0]) == {2}
    assert r.box_mask[2, 7, 8] and not r.box_mask[2, 15, 8]


@pytest.mark.parametrize("data, words", [
    ({}, "no prompts"),
    ([], "expected a JSON object"),
    ({"points": [{"lps": [1, 2]}]}, "expected [x, y, z]"),
    ({"points": [{"lps": [1, 2, "a"]}]}, "expected [x, y, z]"),
    ({"points": [{"lps": [1, 2, 3], "positive": "yes"}]}, "'positive' must be true or false"),
    ({"points": {"lps": [1, 2, 3]}}, "'points' must be a list"),
    ({"clicks": []}, "unknown key"),
    ({"lassos": [{"lps": [[0, 0, 0], [1, 1, 1]]}]}, "at least 3 points"),
])
def test_malformed_prompts_give_one_line(data, words):
    with pytest.raises(PromptError) as e:
        Prompts.from_json(data)
    assert words in str(e.value) and "\n" not in str(e.value)


def test_prompt_outside_the_image_names_it():
    far = tuple(OBLIQUE.index_to_world([30, 5, 4]))
    with pytest.raises(PromptError) as e:
        rasterise(Prompts((Point(_world(OBLIQUE, 1, 1, 1)), Point(far))), OBLIQUE)
    assert "point 2" in str(e.value) and "outside the image" in str(e.value) and "\n" not in str(e.value)


def test_lasso_not_on_one_slice_is_refused():
    pts = (_world(OBLIQUE, 1, 1, 1), _world(OBLIQUE, 4, 12, 3), _world(OBLIQUE, 7, 5, 15))
    with pytest.raises(PromptError, match="lasso 1: must be drawn on one slice"):
        rasterise(Prompts((Lasso(pts),)), OBLIQUE)


def test_file_errors_name_the_file(tmp_path):
    bad = tmp_path / "p.json"
    bad.write_text("{not json")
    with pytest.raises(PromptError, match="p.json: not valid JSON"):
        Prompts.load(bad)
    with pytest.raises(PromptError, match="cannot read"):
        Prompts.load(tmp_path / "missing.json")


def test_json_round_trip():
    p = Prompts((Point((1.0, 2.0, 3.0)), Point((4.0, 5.0, 6.0), False), Box((0, 0, 0), (1, 1, 0)),
                 Scribble(((0.0, 0.0, 0.0), (1.0, 1.0, 1.0)), False), Lasso(((0, 0, 0), (1, 0, 0), (0, 1, 0)))))
    again = Prompts.from_json(json.loads(json.dumps(p.to_json())))
    assert again.counts() == {"points": 2, "boxes": 1, "scribbles": 1, "lassos": 1}
    assert again.to_json() == p.to_json()
