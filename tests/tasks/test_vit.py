"""The ViT task end to end on real Fashion-MNIST images: training learns, saved models reload, the CLI works."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from glassformer.cli import main
from glassformer.data.corpora import ImageDataset, load_fashion_mnist
from glassformer.tasks import vit


@pytest.fixture(scope="module")
def fashion() -> ImageDataset:
    """The real data set, fetched on first use (from Debian's package) like every other source."""
    return load_fashion_mnist(quiet=True)


@pytest.fixture(scope="module")
def small(fashion: ImageDataset) -> ImageDataset:
    """2,000 training and 1,000 test images: enough to learn far above chance in a few seconds."""
    return ImageDataset(fashion.train_images[:2000], fashion.train_labels[:2000], fashion.test_images[:1000],
                        fashion.test_labels[:1000], fashion.class_names)


@pytest.fixture(scope="module")
def trained(small: ImageDataset, tmp_path_factory: pytest.TempPathFactory) -> vit.ViTRun:
    preset = vit.ViTPreset("test", d_model=32, n_heads=2, n_layers=2, d_ff=64, epochs=6, batch_size=64, lr=3e-3,
                           validation_size=200, threads=1)
    return vit.train(preset, tmp_path_factory.mktemp("vit") / "model", data=small, progress=False)


def test_mean_and_std_are_the_training_pixels(fashion: ImageDataset) -> None:
    """MEAN and STD are recomputed here from the 60,000 training images (numpy, float64)."""
    pixels = fashion.train_images
    assert vit.MEAN == pytest.approx(pixels.mean(dtype=np.float64) / 255, abs=5e-5)
    assert vit.STD == pytest.approx(pixels.std(dtype=np.float64) / 255, abs=5e-5)
    assert vit.normalise(torch.zeros(1, 2, 2, dtype=torch.uint8))[0, 0, 0, 0] == pytest.approx(-vit.MEAN / vit.STD)


def test_random_shift_is_a_padded_crop() -> None:
    """Each shifted image equals a slice of the zero-padded image at the offset the generator drew."""
    images = torch.randint(1, 256, (6, 5, 7), dtype=torch.uint8)
    shifted = vit.random_shift(images, 2, generator=torch.Generator().manual_seed(3))
    replay = torch.Generator().manual_seed(3)
    dy = torch.randint(0, 5, (6, 1, 1), generator=replay).flatten().tolist()
    dx = torch.randint(0, 5, (6, 1, 1), generator=replay).flatten().tolist()
    for i in range(6):
        padded = np.zeros((9, 11), dtype=np.uint8)
        padded[2:7, 2:9] = images[i].numpy()
        np.testing.assert_array_equal(shifted[i].numpy(), padded[dy[i]:dy[i] + 5, dx[i]:dx[i] + 7])
    assert vit.random_shift(images, 0) is images


@pytest.mark.slow  # shares a 5-20 s training run (2 cores, depending on load)
def test_training_learns_far_above_chance(trained: vit.ViTRun) -> None:
    # 10 balanced classes: chance is 10%.
    assert trained.test_accuracy > 0.5, trained
    assert trained.n_test == 1000


@pytest.mark.slow  # shares a 5-20 s training run (2 cores, depending on load)
def test_saved_model_reloads_with_identical_outputs(trained: vit.ViTRun, small: ImageDataset) -> None:
    classifier = vit.ImageClassifier.load(trained.out_dir)
    assert classifier.label_names == list(small.class_names)
    config = json.loads((trained.out_dir / "config.json").read_text())
    assert config["task"] == "vit" and config["extra"]["image_mean"] == [vit.MEAN]
    images = torch.from_numpy(small.test_images[:50])
    again = vit.ImageClassifier.load(trained.out_dir).predict_proba(images)
    assert torch.equal(classifier.predict_proba(images), again)
    labels = torch.from_numpy(small.test_labels[:50]).long()
    # The saved test accuracy is re-derived from the reloaded weights on the same images.
    rescored = vit.score(classifier.model, small.test_images, small.test_labels)
    assert rescored["accuracy"] == pytest.approx(trained.test_accuracy)
    assert float((again.argmax(-1) == labels).float().mean()) > 0.5


@pytest.mark.slow  # shares a 5-20 s training run (2 cores, depending on load)
def test_eval_json_scores_the_10000_test_images(trained: vit.ViTRun, fashion: ImageDataset,
                                                capsys: pytest.CaptureFixture) -> None:
    assert main(["eval", str(trained.out_dir), "--json"]) == 0
    result = json.loads(capsys.readouterr().out)
    assert set(result) >= {"accuracy", "n"} and result["n"] == 10_000
    assert result["mirror_average"] is False
    classifier = vit.ImageClassifier.load(trained.out_dir)
    probs = classifier.predict_proba(fashion.test_images)
    expected = float((probs.argmax(-1).numpy() == fashion.test_labels).mean())
    assert result["accuracy"] == pytest.approx(expected)


@pytest.mark.slow  # shares a 5-20 s training run (2 cores, depending on load)
def test_mirror_average_is_the_mean_of_both_views_probabilities(trained: vit.ViTRun, small: ImageDataset) -> None:
    """Test-time mirroring: p = (softmax(f(x)) + softmax(f(x mirrored in numpy))) / 2, and the scores follow it."""
    images, labels = small.test_images[:200], small.test_labels[:200]
    plain = vit.ImageClassifier.load(trained.out_dir)
    assert not plain.mirror_average  # the test preset does not ask for it
    averaging = vit.ImageClassifier(plain.model, plain.label_names, info={"preset": {"mirror_average": True}})
    mirrored = np.ascontiguousarray(images[:, :, ::-1])
    expected = (plain.predict_proba(images) + plain.predict_proba(mirrored)) / 2
    got = averaging.predict_proba(images)
    torch.testing.assert_close(got, expected, atol=1e-6, rtol=1e-5)
    scored = vit.score(plain.model, images, labels, mirror_average=True)
    assert scored["accuracy"] == pytest.approx(float((expected.argmax(-1).numpy() == labels).mean()))
    nll = -np.log(expected.numpy()[np.arange(len(labels)), labels]).mean()
    assert scored["loss"] == pytest.approx(float(nll), rel=1e-4)


def _write_png(path: Path, pixels: np.ndarray) -> Path:
    from PIL import Image

    Image.fromarray(pixels, mode="L").save(path)
    return path


@pytest.mark.slow  # shares a 5-20 s training run (2 cores, depending on load)
def test_classify_image_reads_a_png_like_the_model_input(trained: vit.ViTRun, small: ImageDataset, tmp_path: Path,
                                                          capsys: pytest.CaptureFixture) -> None:
    image = small.test_images[0]
    png = _write_png(tmp_path / "item.png", image)
    assert main(["classify-image", str(trained.out_dir), "--precision", "fp32", "--json", str(png)]) == 0
    [result] = json.loads(capsys.readouterr().out)
    probs = vit.ImageClassifier.load(trained.out_dir).predict_proba(image[None])[0]
    assert result["file"] == str(png)
    assert result["label"] == small.class_names[int(probs.argmax())]
    assert result["score"] == pytest.approx(float(probs.max()), abs=1e-6)


def test_light_background_is_inverted_and_large_images_resized(small: ImageDataset, tmp_path: Path) -> None:
    image = small.test_images[1]
    assert np.median(np.concatenate([image[0], image[-1]])) < 128  # Fashion-MNIST: dark background
    inverted = _write_png(tmp_path / "light.png", 255 - image)
    np.testing.assert_array_equal(vit.load_image(inverted), image)
    big = _write_png(tmp_path / "big.png", np.kron(image, np.ones((4, 4), dtype=np.uint8)))
    assert np.abs(vit.load_image(big).astype(int) - image.astype(int)).mean() < 8


def test_image_bytes_read_as_the_file_they_came_from(tmp_path: Path) -> None:
    """What `glassformer serve` receives (the bytes) becomes what `classify-image` reads (the file)."""
    rng = np.random.default_rng(0)
    png = _write_png(tmp_path / "noise.png", rng.integers(0, 256, (37, 23), dtype=np.uint8))
    np.testing.assert_array_equal(vit.load_image(png.read_bytes()), vit.load_image(png))
    with pytest.raises(ValueError, match="the image is not a readable image"):
        vit.load_image(b"not an image")


@pytest.mark.slow  # shares a 5-20 s training run (2 cores, depending on load)
def test_classify_image_rejects_non_images(trained: vit.ViTRun, tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    text = tmp_path / "notes.png"
    text.write_text("not an image at all\n")
    assert main(["classify-image", str(trained.out_dir), str(text)]) == 2
    err = capsys.readouterr().err
    assert str(text) in err and "not a readable image" in err
    missing = tmp_path / "missing.jpg"
    assert main(["classify-image", str(trained.out_dir), str(missing)]) == 2
    assert str(missing) in capsys.readouterr().err


def test_a_checkpoint_reads_pixels_as_its_preprocessor_config_says(tmp_path):
    """Reference: Pillow's grey conversion L = (299 R + 587 G + 114 B) / 1000 gives 76 for pure red; (1 - 0.5) / 0.5."""
    from PIL import Image

    rgb = np.zeros((20, 10, 3), dtype=np.uint8)
    rgb[..., 0] = 255  # pure red
    Image.fromarray(rgb).save(tmp_path / "red.png")
    grey = vit.checkpoint_pixels([tmp_path / "red.png"], vit.ViTConfig(image_size=8, patch_size=4, in_channels=1),
                                 {"image_mean": [0.0], "image_std": [1.0]})
    assert grey.shape == (1, 1, 8, 8)
    np.testing.assert_allclose(grey.numpy(), 76 / 255, atol=1e-6)
    colour = vit.checkpoint_pixels([tmp_path / "red.png"], vit.ViTConfig(image_size=4, patch_size=2, in_channels=3), {})
    assert colour.shape == (1, 3, 4, 4)
    np.testing.assert_allclose(colour[0, 0].numpy(), 1.0)
    np.testing.assert_allclose(colour[0, 1].numpy(), -1.0)
    (tmp_path / "notes.png").write_text("not an image")
    with pytest.raises(ValueError, match="not a readable image"):
        vit.checkpoint_pixels([tmp_path / "notes.png"], vit.ViTConfig(image_size=4, patch_size=2), {})
