import numpy as np
import pytest

from core.errors import GeometryError
from core.geometry import Geometry
from tests.conftest import rotation


def test_index_world_round_trip_oblique_anisotropic():
    g = Geometry((10, 20, 30), (0.7, 0.9, 3.0), (-50.0, 20.0, 7.5), rotation(0.3, 0.2, -0.4))
    ijk = np.array([[0, 0, 0], [9, 19, 29], [3.5, 7.25, 11.0]])
    xyz = g.index_to_world(ijk)
    np.testing.assert_allclose(g.world_to_index(xyz), ijk, atol=1e-9)
    # voxel (1, 0, 0) lies one x-spacing along the first direction column
    np.testing.assert_allclose(g.index_to_world([1, 0, 0]) - g.origin, 0.7 * g.direction[:, 0])
    np.testing.assert_allclose(g.affine @ np.array([3.5, 7.25, 11.0, 1.0]), np.append(xyz[2], 1.0))


def test_from_affine_factors_spacing_and_direction():
    g = Geometry((4, 5, 6), (0.5, 1.5, 2.0), (1, 2, 3), rotation(0.1, 0.2, 0.3))
    h = Geometry.from_affine(g.size, g.affine)
    assert g.same_grid(h, tol=1e-12)


def test_index_to_index_between_grids():
    fine = Geometry((20, 20, 20), (0.5, 0.5, 0.5), (0, 0, 0))
    coarse = Geometry((10, 10, 10), (1.0, 1.0, 1.0), (0, 0, 0))
    m = fine.index_to_index(coarse)
    np.testing.assert_allclose(m @ [4, 6, 8, 1], [2, 3, 4, 1])


def test_orientation_code_and_validation():
    assert Geometry((2, 2, 2)).orientation_code() == "LPS"
    ras = Geometry((2, 2, 2), direction=np.diag([-1.0, -1.0, 1.0]))
    assert ras.orientation_code() == "RAS" and not ras.is_oblique()
    assert Geometry((2, 2, 2), direction=rotation(0.3, 0, 0)).is_oblique()
    with pytest.raises(GeometryError):
        Geometry((2, 2, 2), direction=np.diag([1.0, 2.0, 1.0]))
    with pytest.raises(GeometryError):
        Geometry((2, 2, 2), spacing=(1, 0, 1))
