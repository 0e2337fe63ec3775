"""Training data, decoded once into a uint8 tensor in memory.

Sources: the official CIFAR-10 python archive, MNIST / Fashion-MNIST IDX files (padded to 32x32),
and an image folder or .zip of one with a subfolder per class (a `train`/`test` level, as in the
JPEG copy of CIFAR-10, picks the split). Named datasets are downloaded when absent and online.
"""

from __future__ import annotations

import dataclasses
import gzip
import io
import os
import pickle
import struct
import tarfile
import urllib.request
import warnings
import zipfile
import zlib
from collections import Counter
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

import numpy as np
import torch
from PIL import Image, UnidentifiedImageError

IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".bmp", ".gif", ".webp"}
CIFAR10_URL = "https://www.cs.toronto.edu/~kriz/cifar-10-python.tar.gz"
IDX_URLS = {
    "mnist": "https://storage.googleapis.com/cvdf-datasets/mnist/",
    "fashion-mnist": "http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/",
}
IDX_FILES = {
    "train": ("train-images-idx3-ubyte.gz", "train-labels-idx1-ubyte.gz"),
    "test": ("t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz"),
}
DOWNLOADABLE = ("cifar10", *IDX_URLS)  # names load_dataset downloads into the data folder
DATA_ENV = "FASTDIFF_DATA"  # environment variable naming the default dataset (a path or one of DOWNLOADABLE)
MAX_IMAGE_SIDE = 4096  # a training image may hold up to MAX_IMAGE_SIDE**2 pixels (16.8 MP); larger ones are refused
MAX_IMAGE_PIXELS = MAX_IMAGE_SIDE**2  # checked on the header, before decoding: every image is resized to 32x32 anyway
MAX_IMAGE_BYTES = 8 * MAX_IMAGE_PIXELS  # 128 MiB: an uncompressed 16-bit RGBA image of the largest size accepted
MODE_NAMES = {  # how the preparation summary names PIL's image modes other than RGB, RGBA, CMYK
    "1": "black and white (1)",
    "L": "grayscale (L)",
    "LA": "grayscale with alpha (LA)",
    "P": "palette (P)",
    "I;16": "16-bit grayscale (I;16)",
}
DECODE_ERRORS = (OSError, ValueError, SyntaxError, EOFError, struct.error)  # what PIL raises on a corrupt file
FASHION_CLASSES = ("t-shirt", "trouser", "pullover", "dress", "coat", "sandal", "shirt", "sneaker", "bag", "ankle-boot")


def default_dataset() -> str:
    """The dataset used when none is named: $FASTDIFF_DATA, else cifar10 (downloaded into data/)."""
    return os.environ.get(DATA_ENV) or "cifar10"


def dataset_label(spec: str) -> str:
    """How tables name a dataset: a downloadable one by its name, a path by its file name."""
    return spec if spec in DOWNLOADABLE else Path(spec).name


def to_model_range(images: torch.Tensor) -> torch.Tensor:
    """uint8 images (0-255) as float32 in the networks' range [-1, 1]."""
    return images.float().div(127.5).sub(1)


class DataError(Exception):
    """Missing, empty or corrupt data; the message names the path."""


@dataclass
class ImageDataset:
    images: torch.Tensor  # (N, C, H, W) uint8
    labels: torch.Tensor  # (N,) long
    class_names: tuple[str, ...]
    flip: bool = True  # random horizontal flips (natural images, not digits)
    preparation: str = ""  # one line on what loading changed (resized, converted), printed when training starts

    def __len__(self) -> int:
        return len(self.images)

    def to(self, device: torch.device) -> ImageDataset:
        """The dataset with its images and labels on the device (itself when they are already there),
        so that batches are cut there and no images cross to the device per step."""
        return dataclasses.replace(self, images=self.images.to(device), labels=self.labels.to(device))

    def batches(self, batch_size: int, generator: torch.Generator, rank: int = 0, world_size: int = 1):
        """One epoch of (images in [-1, 1], labels) batches, on the dataset's device; with several
        processes each takes every world_size-th index of the same shuffled order (a distributed
        sampler). The order and the flips come from the CPU generator, so they are the same on every
        device, and move to the images' device once per epoch."""
        order = torch.randperm(len(self), generator=generator)
        num_batches = len(order) // batch_size  # drop the ragged last batch
        flips = torch.rand(num_batches * batch_size, generator=generator) < 0.5 if self.flip else None
        order = order.to(self.images.device)
        flips = flips.to(self.images.device) if self.flip else None
        per_process = batch_size // world_size
        for start in range(0, num_batches * batch_size, batch_size):
            index = order[start : start + batch_size][rank::world_size][:per_process]
            # Contiguous NCHW: decoded images are often channels-last views, which slow bf16 training on CPU.
            x = to_model_range(self.images[index].contiguous())
            if self.flip:
                flip = flips[start : start + batch_size][rank::world_size][:per_process]
                x = torch.where(flip[:, None, None, None], x.flip(3), x)
            yield x, self.labels[index]


def download(url: str, dest: Path) -> Path:
    dest.parent.mkdir(parents=True, exist_ok=True)
    tmp = dest.with_name(dest.name + ".part")
    try:
        with urllib.request.urlopen(url, timeout=60) as response, open(tmp, "wb") as f:
            while chunk := response.read(1 << 20):
                f.write(chunk)
    except OSError as e:
        tmp.unlink(missing_ok=True)
        raise DataError(
            f"{dest}: not found, and downloading {url} failed ({e}); download it by hand and pass its path"
        ) from e
    tmp.replace(dest)
    return dest


class _ArrayUnpickler(pickle.Unpickler):
    """The CIFAR-10 batches are pickles: allow numpy arrays and nothing else."""

    ALLOWED = {
        ("numpy.core.multiarray", "_reconstruct"),
        ("numpy._core.multiarray", "_reconstruct"),
        ("numpy", "ndarray"),
        ("numpy", "dtype"),
    }

    def find_class(self, module, name):
        if (module, name) not in self.ALLOWED:
            raise pickle.UnpicklingError(f"refusing to load {module}.{name}")
        return super().find_class(module, name)


def load_cifar10_archive(path: Path, split: str = "train") -> ImageDataset:
    """The official cifar-10-python.tar.gz."""
    names = [f"data_batch_{i}" for i in range(1, 6)] if split == "train" else ["test_batch"]
    images, labels = [], []
    try:
        with tarfile.open(path, "r:gz") as tar:
            members = {PurePosixPath(m.name).name: m for m in tar.getmembers() if m.isfile()}
            class_names = tuple(
                n.decode() for n in _ArrayUnpickler(tar.extractfile(members["batches.meta"])).load()[b"label_names"]
            )
            for name in names:
                batch = _ArrayUnpickler(tar.extractfile(members[name]), encoding="bytes").load()
                images.append(np.asarray(batch[b"data"], dtype=np.uint8).reshape(-1, 3, 32, 32))
                labels.extend(batch[b"labels"])
    except (tarfile.TarError, KeyError, EOFError, OSError, pickle.UnpicklingError, ValueError) as e:
        raise DataError(f"{path}: not a valid CIFAR-10 python archive ({type(e).__name__}: {e})") from e
    return ImageDataset(torch.from_numpy(np.concatenate(images)), torch.tensor(labels), class_names)


def _read_idx(path: Path) -> np.ndarray:
    with gzip.open(path) if path.suffix == ".gz" else open(path, "rb") as f:
        data = f.read()
    _, dtype_code, ndim = struct.unpack(">HBB", data[:4])
    shape = struct.unpack(f">{ndim}I", data[4 : 4 + 4 * ndim])
    return np.frombuffer(data, dtype=np.uint8, offset=4 + 4 * ndim).reshape(shape)


def load_idx(folder: Path, name: str, split: str = "train", download_missing: bool = True) -> ImageDataset:
    """MNIST or Fashion-MNIST from the standard IDX files, zero-padded from 28x28 to 32x32."""
    paths = [folder / f for f in IDX_FILES[split]]
    for path in paths:
        if not path.exists() and path.with_suffix("").exists():
            paths[paths.index(path)] = path.with_suffix("")
        elif not path.exists():
            if not download_missing:
                raise DataError(f"{path}: file not found")
            download(IDX_URLS[name] + path.name, path)
    try:
        images, labels = _read_idx(paths[0]), _read_idx(paths[1])
    except (OSError, struct.error, ValueError, EOFError) as e:
        raise DataError(f"{folder}: corrupt IDX file ({e})") from e
    if len(images) != len(labels) or images.ndim != 3:
        raise DataError(f"{folder}: IDX images and labels do not match")
    images = torch.from_numpy(images.copy())[:, None]
    class_names = FASHION_CLASSES if name == "fashion-mnist" else tuple(str(d) for d in range(10))
    return ImageDataset(
        torch.nn.functional.pad(images, (2, 2, 2, 2)),
        torch.from_numpy(labels.astype(np.int64)),
        class_names,
        flip=False,
    )


def read_image_file(open_file, name: str, where: str) -> bytes:
    """The bytes of an image file (open_file(name) opens it); DataError naming it (as where) when it
    cannot be read or holds more than MAX_IMAGE_BYTES, of which no more is read."""
    try:
        with open_file(name) as f:
            data = f.read(MAX_IMAGE_BYTES + 1)
    except (OSError, zipfile.BadZipFile, zlib.error, RuntimeError, NotImplementedError) as e:  # corrupt, encrypted
        raise DataError(f"{where}: could not be read ({e})") from e
    if len(data) > MAX_IMAGE_BYTES:
        raise DataError(f"{where}: more than {MAX_IMAGE_BYTES >> 20} MiB, too large for a training image")
    return data


def open_image(data: bytes, name: str) -> Image.Image:
    """The image in data with only its header read; DataError naming the file when it is not a readable
    image or holds more than MAX_IMAGE_PIXELS, so that no large image is ever decoded."""
    try:
        with warnings.catch_warnings():  # PIL's warning for its own, larger, limit: refused below anyway
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            image = Image.open(io.BytesIO(data))
    except Image.DecompressionBombError as e:  # over twice PIL's limit: PIL refuses in open(), without the size
        raise too_large(name, f"over {2 * Image.MAX_IMAGE_PIXELS:,} pixels") from e
    except UnidentifiedImageError as e:
        raise DataError(f"{name}: not a readable image (its content is not in any image format)") from e
    except DECODE_ERRORS as e:
        raise DataError(f"{name}: not a readable image ({e})") from e
    width, height = image.size
    if width * height > MAX_IMAGE_PIXELS:
        raise too_large(name, f"{width}x{height} pixels")
    return image


def too_large(name: str, size: str) -> DataError:
    return DataError(
        f"{name}: {size}, more than the {MAX_IMAGE_SIDE}x{MAX_IMAGE_SIDE} ({MAX_IMAGE_PIXELS:,} pixels) "
        f"a training image may have; shrink it or leave it out"
    )


def prepare_image(image: Image.Image, image_size: int, channels: int, name: str) -> np.ndarray:
    """Decode, convert to RGB (or L), center-crop to a square and resize; returns (C, H, W) uint8."""
    try:
        if image.mode.startswith("I;16"):  # 16-bit grayscale: keep the top 8 bits, where convert() would clip
            image = Image.fromarray((np.asarray(image) >> 8).astype(np.uint8))
        image = image.convert("L" if channels == 1 else "RGB")
    except DECODE_ERRORS as e:
        raise DataError(f"{name}: not a readable image ({e})") from e
    w, h = image.size
    side = min(w, h)
    if (w, h) != (image_size, image_size):
        image = image.crop(((w - side) // 2, (h - side) // 2, (w + side) // 2, (h + side) // 2))
        image = image.resize((image_size, image_size), Image.BICUBIC)
    array = np.asarray(image, dtype=np.uint8)
    return array[None] if channels == 1 else array.transpose(2, 0, 1)


def preparation_summary(count: int, resized: int, converted: Counter[str]) -> str:
    """e.g. 'prepared 5000 images: 12 resized from other sizes, 3 converted from grayscale (L), 1 from RGBA'."""
    changes = [f"{resized} resized from other sizes"] if resized else []
    for i, (mode, n) in enumerate(converted.most_common()):
        changes.append(f"{n} {'converted ' if i == 0 else ''}from {MODE_NAMES.get(mode, mode)}")
    return f"prepared {count} images: {', '.join(changes)}" if changes else f"prepared {count} images, none changed"


def check_no_empty_classes(path: Path, folders: set[PurePosixPath], images: list[PurePosixPath]) -> None:
    """Raise DataError naming any folder beside the class folders that holds no image: an empty class
    would otherwise be dropped without a word."""
    class_folders = {image.parent for image in images}
    holding_images = {folder for image in images for folder in image.parents}
    empty = sorted(
        str(folder)
        for folder in folders
        if folder.parent in {c.parent for c in class_folders}
        and folder not in holding_images
        and "__MACOSX" not in folder.parts
        and folder.name not in ("train", "test")
    )
    if empty:
        raise DataError(f"{path}: class folder(s) without images: {', '.join(empty)}")


def load_image_folder(path: Path, split: str = "train", image_size: int = 32, channels: int = 3) -> ImageDataset:
    """A folder or .zip with one subfolder per class, optionally under a train/test level."""
    if zipfile.is_zipfile(path):
        try:
            archive = zipfile.ZipFile(path)
        except (zipfile.BadZipFile, OSError) as e:
            raise DataError(f"{path}: not a readable .zip file ({e})") from e
        names = archive.namelist()
        outside = [n for n in names if n.startswith("/") or ".." in PurePosixPath(n).parts]
        if outside:
            raise DataError(f"{path}: members outside the archive's folder are refused: {', '.join(outside[:5])}")
        files = {name: archive.open for name in names if not name.endswith("/")}
        folders = {PurePosixPath(n) for n in names if n.endswith("/")} | {PurePosixPath(n).parent for n in names}
    elif path.is_dir():
        files = {
            str(p.relative_to(path).as_posix()): lambda n, root=path: open(root / n, "rb")
            for p in path.rglob("*")
            if p.is_file()
        }
        folders = {PurePosixPath(p.relative_to(path).as_posix()) for p in path.rglob("*") if p.is_dir()}
    else:
        raise DataError(f"{path}: neither a folder nor a .zip file")
    images_by_class: dict[str, list[str]] = {}
    for name in files:
        parts = PurePosixPath(name).parts
        if PurePosixPath(name).suffix.lower() not in IMAGE_SUFFIXES or "__MACOSX" in parts:
            continue
        if split in parts[:-2]:
            parts = parts[parts.index(split) + 1 :]
        elif {"train", "test"} & set(parts[:-2]):
            continue  # another split's image
        if len(parts) >= 2:
            images_by_class.setdefault(parts[-2], []).append(name)
    if not images_by_class:
        raise DataError(f"{path}: no images in class subfolders (expected CLASS/IMAGE.jpg, optionally under {split}/)")
    check_no_empty_classes(path, folders, [PurePosixPath(n) for names in images_by_class.values() for n in names])
    class_names = tuple(sorted(images_by_class))
    arrays, labels, resized, converted = [], [], 0, Counter()
    for label, class_name in enumerate(class_names):
        for name in sorted(images_by_class[class_name]):
            where = f"{path}:{name}"
            image = open_image(read_image_file(files[name], name, where), where)
            resized += image.size != (image_size, image_size)
            if image.mode != ("L" if channels == 1 else "RGB"):
                converted[image.mode] += 1
            arrays.append(prepare_image(image, image_size, channels, where))
            labels.append(label)
    summary = preparation_summary(len(arrays), resized, converted)
    return ImageDataset(torch.from_numpy(np.stack(arrays)), torch.tensor(labels), class_names, preparation=summary)


def load_dataset(
    spec: str, split: str = "train", image_size: int = 32, channels: int = 3, root: Path = Path("data")
) -> ImageDataset:
    """`cifar10`, `mnist`, `fashion-mnist` (downloaded into root when absent), or a path to a CIFAR-10
    .tar.gz, an IDX folder, or an image folder / .zip."""
    if spec == "cifar10":
        path = root / "cifar-10-python.tar.gz"
        dataset = load_cifar10_archive(path if path.exists() else download(CIFAR10_URL, path), split)
    elif spec in IDX_URLS:
        dataset = load_idx(root / spec, spec, split)
    else:
        path = Path(spec)
        if not path.exists():
            raise DataError(
                f"{path}: not found (give a folder, a .zip, a CIFAR-10 .tar.gz, "
                f"or one of cifar10, mnist, fashion-mnist)"
            )
        if path.name.endswith(".tar.gz"):
            dataset = load_cifar10_archive(path, split)
        elif path.is_dir() and any(path.glob("*-idx3-ubyte*")):
            dataset = load_idx(
                path, "fashion-mnist" if "fashion" in path.name else "mnist", split, download_missing=False
            )
        else:
            dataset = load_image_folder(path, split, image_size, channels)
    if len(dataset) == 0:
        raise DataError(f"{spec}: the {split} split has no images")
    return dataset
