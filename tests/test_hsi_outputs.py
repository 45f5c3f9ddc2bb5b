"""Prediction outputs: ARAD-format cubes the reader reads back, and quicklooks with and without a reference."""

from pathlib import Path

import torch

from sarexp.callbacks.cube_writer import CubeWriter
from sarexp.data.arad_files import read_cube
from sarexp.plotting.hsi import false_colour, probe_pixels


def test_cube_writer_round_trip_and_quicklooks(tmp_path: Path) -> None:
    torch.manual_seed(0)
    preds = torch.rand(2, 31, 12, 20)
    batch = {"rgb": torch.rand(2, 3, 12, 20), "name": ["a", "b"]}
    writer = CubeWriter(str(tmp_path))
    writer.write_on_batch_end(None, None, {"preds": preds}, None, batch, 0)
    writer.write_on_batch_end(None, None, {"preds": preds[:1]}, None,
                              {"rgb": batch["rgb"][:1], "hsi": preds[:1] + 0.1, "name": ["c"]}, 1)
    for index, name in enumerate("ab"):
        torch.testing.assert_close(torch.from_numpy(read_cube(tmp_path / f"{name}.mat")), preds[index])
    assert all((tmp_path / f"{name}.png").stat().st_size > 5_000 for name in "abc")
    assert not list(tmp_path.glob(".*"))  # no temporary files left behind


def test_false_colour_and_probe_pixels() -> None:
    cube = torch.zeros(31, 4, 5).numpy()
    cube[24] = 1.0  # 640 nm → red
    image = false_colour(cube)
    assert image.shape == (4, 5, 3) and image[..., 0].min() == 1.0 and image[..., 1:].max() == 0.0
    pixels = probe_pixels(10, 20, 4)
    assert len(set(pixels)) == 4 and all(0 <= r < 10 and 0 <= c < 20 for r, c in pixels)
