"""ImageFolderDataModule: a folder of images, flat or one subfolder per class."""

from __future__ import annotations

import pickle

import pytest
import torch
from helpers.batches import check_batch, first_batch
from helpers.fake_datasets import make_image_folder

from glowapp.data import DatasetNotFoundError, ImageFolderDataModule, ImageLoadError, load_image
from glowapp.data.folder import find_image_classes


def test_image_folder_with_classes(tmp_path):
    make_image_folder(tmp_path / "photos", classes=("cats", "dogs", "owls"), per_class=10)
    dm = ImageFolderDataModule(path=str(tmp_path / "photos"), image_size=16, batch_size=4)
    assert dm.num_classes == 3
    dm.prepare_data()
    dm.setup()
    check_batch(first_batch(dm.train_dataloader()), (3, 16, 16), 4)
    sizes = (len(dm.train_dataset), len(dm.val_dataset), len(dm.test_dataset))
    assert sizes == (24, 3, 3)
    splits = (dm.train_dataset, dm.val_dataset, dm.test_dataset)
    assert sorted(torch.cat([s.indices for s in splits]).tolist()) == list(range(30))
    labels = {int(dm.train_dataset[i][1]) for i in range(len(dm.train_dataset))}
    assert labels == {0, 1, 2}
    pickle.dumps(dm.train_dataset)


def test_classes_are_subfolders_with_images(tmp_path):
    make_image_folder(tmp_path, classes=("b", "a"), per_class=1)
    (tmp_path / "empty").mkdir()
    (tmp_path / ".hidden").mkdir()
    make_image_folder(tmp_path / "c" / "nested", classes=None, per_class=1)
    assert find_image_classes(str(tmp_path)) == ["a", "b", "c"]


def test_image_folder_flat_grayscale_skips_other_files(tmp_path):
    files = make_image_folder(tmp_path, classes=None, per_class=12, size=(50, 20))
    (tmp_path / "notes.txt").write_text("not an image")
    (tmp_path / ".DS_Store").write_bytes(b"\0\0")
    dm = ImageFolderDataModule(
        path=str(tmp_path), image_size=8, channels=1, batch_size=2, val_fraction=0.2
    )
    assert dm.num_classes == 1
    with pytest.warns(UserWarning, match=r"skipped 1 file\(s\) .*notes.txt"):
        dm.setup()
    assert len(dm.train_dataset) + len(dm.val_dataset) + len(dm.test_dataset) == 12
    images, labels = first_batch(dm.val_dataloader())
    check_batch((images, labels), (1, 8, 8), 2)
    assert labels.tolist() == [0, 0]
    # exactly what load_image (the CLI path) makes of the same file
    index = int(dm.test_dataset.indices[0])
    expected = load_image(files[index], (1, 8, 8)).image
    assert torch.equal(dm.test_dataset[0][0], expected)


def test_loose_images_beside_class_folders_are_ignored_with_a_warning(tmp_path):
    make_image_folder(tmp_path, classes=("a", "b"), per_class=5)
    make_image_folder(tmp_path, classes=None, per_class=2, seed=9)
    dm = ImageFolderDataModule(path=str(tmp_path), image_size=8)
    with pytest.warns(UserWarning, match=r"ignoring 2 image\(s\)"):
        dm.setup("fit")
    assert len(dm.train_dataset) + len(dm.val_dataset) == 10 - 1  # one test image


def test_image_folder_errors(tmp_path):
    with pytest.raises(DatasetNotFoundError, match="not a directory"):
        ImageFolderDataModule(path=str(tmp_path / "missing")).prepare_data()
    (tmp_path / "empty" / "sub").mkdir(parents=True)
    (tmp_path / "empty" / "readme.md").write_text("hi")
    with pytest.raises(DatasetNotFoundError, match="no image files"):
        ImageFolderDataModule(path=str(tmp_path / "empty")).setup()
    with pytest.raises(ValueError, match="channels"):
        ImageFolderDataModule(path=str(tmp_path), channels=2)
    with pytest.raises(ValueError, match="test_fraction"):
        ImageFolderDataModule(path=str(tmp_path), val_fraction=0.5, test_fraction=0.5)
    with pytest.raises(ValueError, match="image_size"):
        ImageFolderDataModule(path=str(tmp_path), image_size=0)


def test_image_folder_bad_image_names_its_file(tmp_path):
    make_image_folder(tmp_path, classes=None, per_class=3)
    (tmp_path / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\n garbage")
    dm = ImageFolderDataModule(path=str(tmp_path), image_size=8, val_fraction=0, test_fraction=0)
    dm.setup("fit")
    with pytest.raises(ImageLoadError, match="broken.png"):
        for i in range(len(dm.train_dataset)):
            dm.train_dataset[i]
