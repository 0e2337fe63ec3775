"""Data loaders on small files the tests write: the official CIFAR-10 archive, IDX files, class-folder
zips and folders, downloads, a clear error naming the path for each kind of bad data, the pixel limit
checked before decoding, and the summary of what loading converted."""

import gzip
import io
import pickle
import struct
import tarfile
import warnings
import zipfile
import zlib

import numpy as np
import pytest
import torch
from PIL import Image, ImageFile

from fastdiff.data import MAX_IMAGE_SIDE, DataError, download, load_dataset, open_image


def add_to_tar(tar, name, data: bytes):
    info = tarfile.TarInfo(name)
    info.size = len(data)
    tar.addfile(info, io.BytesIO(data))


def write_cifar_archive(path, per_batch=6):
    """The official layout: cifar-10-batches-py/{batches.meta,data_batch_1..5,test_batch}, pickled dicts."""
    rng = np.random.default_rng(0)
    with tarfile.open(path, "w:gz") as tar:
        meta = {
            b"label_names": [
                n.encode()
                for n in ("airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck")
            ]
        }
        add_to_tar(tar, "cifar-10-batches-py/batches.meta", pickle.dumps(meta))
        for name in [f"data_batch_{i}" for i in range(1, 6)] + ["test_batch"]:
            batch = {
                b"data": rng.integers(0, 256, (per_batch, 3072), dtype=np.uint8),
                b"labels": list(range(per_batch)),
            }
            add_to_tar(tar, f"cifar-10-batches-py/{name}", pickle.dumps(batch))
    return path


def test_official_cifar10_archive(tmp_path):
    path = write_cifar_archive(tmp_path / "cifar-10-python.tar.gz")
    train = load_dataset(str(path))
    assert train.images.shape == (30, 3, 32, 32) and train.images.dtype == torch.uint8
    assert train.labels.tolist()[:6] == [0, 1, 2, 3, 4, 5] and train.class_names[6] == "frog"
    assert len(load_dataset(str(path), split="test")) == 6


def test_cifar10_by_name_uses_the_local_copy(tmp_path):
    write_cifar_archive(tmp_path / "cifar-10-python.tar.gz")
    assert len(load_dataset("cifar10", root=tmp_path)) == 30


def test_archive_with_foreign_pickle_is_refused(tmp_path):
    class Evil:
        def __reduce__(self):
            return (print, ("pwned",))

    path = tmp_path / "evil.tar.gz"
    with tarfile.open(path, "w:gz") as tar:
        add_to_tar(tar, "cifar-10-batches-py/batches.meta", pickle.dumps(Evil()))
    with pytest.raises(DataError, match=r"evil\.tar\.gz: not a valid CIFAR-10 python archive"):
        load_dataset(str(path))


def write_idx(path, array: np.ndarray):
    header = struct.pack(">HBB", 0, 8, array.ndim) + struct.pack(f">{array.ndim}I", *array.shape)
    with gzip.open(path, "wb") as f:
        f.write(header + array.astype(np.uint8).tobytes())


def test_mnist_idx_files_are_padded_to_32(tmp_path):
    folder = tmp_path / "mnist"
    folder.mkdir()
    write_idx(folder / "train-images-idx3-ubyte.gz", np.full((5, 28, 28), 200))
    write_idx(folder / "train-labels-idx1-ubyte.gz", np.arange(5))
    data = load_dataset(str(folder))
    assert data.images.shape == (5, 1, 32, 32) and not data.flip
    assert data.images[0, 0, 0, 0] == 0 and data.images[0, 0, 2, 2] == 200
    assert data.labels.tolist() == [0, 1, 2, 3, 4]


def test_download_writes_the_file(tmp_path):
    source = tmp_path / "source.bin"
    source.write_bytes(b"x" * 3000)
    assert download(source.as_uri(), tmp_path / "got" / "file.bin").read_bytes() == b"x" * 3000
    with pytest.raises(DataError, match=r"missing\.bin: not found, and downloading .* failed"):
        download((tmp_path / "nothing").as_uri(), tmp_path / "missing.bin")
    assert not (tmp_path / "missing.bin.part").exists()


def png(color, size=(32, 32)):
    buffer = io.BytesIO()
    Image.new("RGB", size, color).save(buffer, format="PNG")
    return buffer.getvalue()


def test_zip_with_train_and_test_splits(tmp_path):
    path = tmp_path / "split.zip"
    with zipfile.ZipFile(path, "w") as archive:
        for split, count in (("train", 3), ("test", 1)):
            for name in ("cat", "dog"):
                for i in range(count):
                    archive.writestr(f"cifar10/{split}/{name}/{i:04d}.jpg", png((10, 200, 10)))
    train = load_dataset(str(path))
    assert train.class_names == ("cat", "dog") and train.labels.tolist() == [0, 0, 0, 1, 1, 1]
    assert train.images[0, :, 0, 0].tolist() == [10, 200, 10]
    assert len(load_dataset(str(path), split="test")) == 2


def test_folder_of_user_pictures_is_resized(tmp_path):
    for name in ("apples", "pears"):
        (tmp_path / "pics" / name).mkdir(parents=True)
        (tmp_path / "pics" / name / "a.png").write_bytes(png((200, 0, 0), size=(80, 60)))
    data = load_dataset(str(tmp_path / "pics"))
    assert data.images.shape == (2, 3, 32, 32) and data.class_names == ("apples", "pears")


def test_bad_data_gets_a_clear_error_naming_the_path(tmp_path):
    with pytest.raises(DataError, match=r"nothing\.zip: not found"):
        load_dataset(str(tmp_path / "nothing.zip"))
    empty = tmp_path / "empty.zip"
    zipfile.ZipFile(empty, "w").close()
    with pytest.raises(DataError, match=r"empty\.zip: no images in class subfolders"):
        load_dataset(str(empty))
    corrupt = tmp_path / "corrupt.zip"
    with zipfile.ZipFile(corrupt, "w") as archive:
        archive.writestr("cat/0.jpg", b"not a jpeg at all")
    with pytest.raises(DataError, match=r"corrupt\.zip:cat/0\.jpg: not a readable image"):
        load_dataset(str(corrupt))
    not_data = tmp_path / "notes.txt"
    not_data.write_text("hello")
    with pytest.raises(DataError, match=r"notes\.txt: neither a folder nor a \.zip"):
        load_dataset(str(not_data))
    broken_tar = tmp_path / "broken.tar.gz"
    broken_tar.write_bytes(b"\x1f\x8b garbage")
    with pytest.raises(DataError, match=r"broken\.tar\.gz: not a valid CIFAR-10"):
        load_dataset(str(broken_tar))


def test_batches_cover_the_epoch_and_split_across_processes():
    from fastdiff.data import ImageDataset

    data = ImageDataset(
        torch.arange(40, dtype=torch.uint8).view(40, 1, 1, 1).expand(40, 1, 2, 2).clone(),
        torch.arange(40),
        ("x",),
        flip=False,
    )
    seen = [labels for _, labels in data.batches(8, torch.Generator().manual_seed(1))]
    assert sorted(torch.cat(seen).tolist()) == list(range(40))
    per_rank = [
        torch.cat([y for _, y in data.batches(8, torch.Generator().manual_seed(1), rank, 2)]) for rank in (0, 1)
    ]
    assert sorted(torch.cat(per_rank).tolist()) == list(range(40)) and len(per_rank[0]) == 20
    x, _ = next(data.batches(8, torch.Generator().manual_seed(1)))
    assert x.min() >= -1 and x.max() <= 1


def test_batches_are_contiguous_nchw_even_from_channels_last_images():
    from fastdiff.data import ImageDataset

    hwc = torch.randint(0, 256, (16, 32, 32, 3), dtype=torch.uint8)
    data = ImageDataset(hwc.permute(0, 3, 1, 2), torch.zeros(16, dtype=torch.long), ("x",))
    x, _ = next(data.batches(8, torch.Generator().manual_seed(0)))
    assert x.is_contiguous() and x.shape == (8, 3, 32, 32)


def png_header(width: int, height: int) -> bytes:
    """A PNG that declares width x height 8-bit gray pixels but holds one row: the header of a bomb."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    header = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", header)
        + chunk(b"IDAT", zlib.compress(bytes(width + 1)))
        + chunk(b"IEND", b"")
    )


@pytest.mark.parametrize(
    "side, size", [(5000, "5000x5000 pixels"), (13000, "13000x13000 pixels"), (20000, "over 178,956,970 pixels")]
)
def test_an_image_over_the_pixel_limit_is_refused_before_decoding(tmp_path, monkeypatch, side, size):
    def no_decoding(self):
        raise AssertionError("decoded an image over the limit")

    monkeypatch.setattr(ImageFile.ImageFile, "load", no_decoding)
    path = tmp_path / "bomb.zip"
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr("cat/big.png", png_header(side, side))
    with warnings.catch_warnings(), pytest.raises(DataError) as error:
        warnings.simplefilter("error")  # not even PIL's own DecompressionBombWarning
        load_dataset(str(path))
    message = str(error.value)
    assert message.startswith(f"{path}:cat/big.png: {size}, more than the 4096x4096") and "\n" not in message


def test_the_largest_accepted_image_is_the_documented_limit():
    assert open_image(png_header(MAX_IMAGE_SIDE, MAX_IMAGE_SIDE), "x.png").size == (4096, 4096)
    assert open_image(png_header(2 * MAX_IMAGE_SIDE, MAX_IMAGE_SIDE // 2), "x.png").size == (8192, 2048)
    with pytest.raises(DataError, match="x.png: 4097x4096 pixels, more than"):
        open_image(png_header(MAX_IMAGE_SIDE + 1, MAX_IMAGE_SIDE), "x.png")


@pytest.mark.parametrize(
    "content, message",
    [
        (b"", "not a readable image (its content is not in any image format)"),
        (png((1, 2, 3))[:60], "not a readable image (image file is truncated"),
        (png((1, 2, 3))[:33] + b"garbage" * 9, "not a readable image ("),
        (b"GIF89a" + bytes(20), "not a readable image ("),
    ],
)
def test_an_unreadable_image_gets_one_line_naming_it(tmp_path, content, message):
    for name in ("a", "b"):
        (tmp_path / name).mkdir()
        (tmp_path / name / "fine.png").write_bytes(png((1, 2, 3)))
    (tmp_path / "b" / "bad.png").write_bytes(content)
    with pytest.raises(DataError) as error:
        load_dataset(str(tmp_path))
    assert str(error.value).startswith(f"{tmp_path}:b/bad.png: {message}") and "\n" not in str(error.value)


def test_a_corrupt_zip_member_gets_one_line_naming_it(tmp_path):
    path = tmp_path / "data.zip"
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr("cat/0.png", png((1, 2, 3)))
    data = bytearray(path.read_bytes())
    data[data.index(b"IDAT") + 6] ^= 0xFF  # a byte of the stored PNG: the member's CRC no longer matches
    path.write_bytes(bytes(data))
    with pytest.raises(DataError, match=r"data\.zip:cat/0\.png: could not be read \(Bad CRC-32"):
        load_dataset(str(path))


def test_converted_and_resized_images_are_counted(tmp_path):
    sixteen_bit = Image.fromarray(np.full((32, 32), 0x8000, dtype=np.uint16))
    images = {
        "a/rgb.png": Image.new("RGB", (32, 32), (9, 9, 9)),
        "a/tiny.png": Image.new("RGB", (1, 1), (200, 100, 0)),
        "b/gray.png": Image.new("L", (32, 32), 77),
        "b/rgba.png": Image.new("RGBA", (40, 32), (1, 2, 3, 0)),
        "b/wide.png": sixteen_bit,
    }
    path = tmp_path / "mixed.zip"
    with zipfile.ZipFile(path, "w") as archive:
        for name, image in images.items():
            buffer = io.BytesIO()
            image.save(buffer, format="PNG")
            archive.writestr(name, buffer.getvalue())
    data = load_dataset(str(path))
    assert data.preparation == (
        "prepared 5 images: 2 resized from other sizes, 1 converted from grayscale (L), 1 from RGBA, "
        "1 from 16-bit grayscale (I;16)"
    )
    assert data.images[1, :, 5, 5].tolist() == [200, 100, 0] and data.images[2].eq(77).all()
    assert data.images[4].eq(128).all()  # 16-bit 0x8000 -> 8-bit 128, not clipped to 255
    assert load_dataset(str(path), channels=1).preparation.endswith(
        "2 converted from RGB, 1 from RGBA, 1 from 16-bit grayscale (I;16)"
    )
