"""The Gradio page of ``glowapp demo``: one tab per operation, served on loopback by default.

:func:`build_app` lays out the Sample, Interpolate, Inpaint, Manipulate, Score and likeness ("Is
this image like the training data?") tabs around a :class:`~glowapp.demo.handlers.Demo`;
:func:`launch` serves it (no share link, no analytics, uploads capped at
:data:`~glowapp.demo.handlers.MAX_UPLOAD_BYTES`); :func:`serve` is the command: load once (the
shipped background model too, for the likeness tab's ``ratio``), write the example photos, serve
until Ctrl+C.

Interpolate, Manipulate, Score and the likeness tab receive the raw uploaded files
(``preprocess=False``) so that a file that is not an image reaches
:func:`~glowapp.demo.handlers.read_upload` and gets its clear message, instead of failing inside
Gradio's own image decoding.
"""

from __future__ import annotations

import functools
import tempfile
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any, ParamSpec, TypeVar

import gradio as gr
from PIL import Image
from rich.console import Console

from glowapp.demo.examples import write_example_sets, write_examples
from glowapp.demo.handlers import (
    MAX_ALPHA,
    MAX_GUIDANCE,
    MAX_ITERATIONS,
    MAX_SAMPLES,
    MAX_STEPS,
    MAX_TEMPERATURE,
    MAX_UPLOAD_BYTES,
    Demo,
    Upload,
    default_background,
)
from glowapp.generate import INTERPOLATION_MODES
from glowapp.image_flow import ImageFlow
from glowapp.masks import MASK_KINDS
from glowapp.ood import TPR

__all__ = ["build_app", "launch", "serve"]

_P = ParamSpec("_P")
_R = TypeVar("_R")

MASK_COLOR = "#ff00ff"
"""Brush colour for painting the region to fill (the magenta of the masked view)."""


def _shown(fn: Callable[_P, _R]) -> Callable[_P, _R]:
    """Turn a ``ValueError`` (a :class:`~glowapp.demo.handlers.DemoInputError`, or the check of
    a value in :mod:`glowapp.generate`) into :class:`gr.Error`, which the page shows to the user
    with the same message."""

    @functools.wraps(fn)
    def wrapper(*args: _P.args, **kwargs: _P.kwargs) -> _R:
        try:
            return fn(*args, **kwargs)
        except ValueError as err:
            raise gr.Error(str(err), print_exception=False) from None

    return wrapper


def _upload(payload: dict[str, Any] | None) -> Upload | None:
    """A raw (``preprocess=False``) file payload as an :class:`Upload`."""
    if not payload:
        return None
    path = Path(payload["path"])
    return Upload(path, payload.get("orig_name") or path.name)


def _sample_tab(demo: Demo) -> None:
    defaults = demo.model.sampling_options()
    with gr.Row():
        with gr.Column(scale=1):
            temperature = gr.Slider(
                0.0, MAX_TEMPERATURE, value=defaults.temperature, step=0.05, label="temperature"
            )
            num = gr.Slider(1, MAX_SAMPLES, value=16, step=1, label="number of images")
            seed = gr.Number(0, precision=0, minimum=0, label="seed")
            # Only what the model can do is offered: guidance needs label dropout, denoising a
            # model trained with Gaussian noise.
            guidance = gr.Slider(
                0.0,
                MAX_GUIDANCE,
                value=defaults.guidance,
                step=0.25,
                label="classifier-free guidance W (0: plain conditional sampling)",
                visible=demo.model.can_guide,
                elem_id="sample-guidance",
            )
            denoise = gr.Checkbox(
                value=bool(defaults.denoise),
                label="denoise (one Tweedie step with the model's score)",
                visible=demo.model.dequantization.noisy,
                elem_id="sample-denoise",
            )
            button = gr.Button("Sample", variant="primary", elem_id="sample-button")
        with gr.Column(scale=2):
            output = gr.Image(label="samples", format="png", elem_id="sample-output")

    def run(temperature: float, num: float, seed: float, w: float, clean: bool) -> Any:
        return demo.sample(
            temperature,
            num,
            seed,
            w if demo.model.can_guide else None,
            clean if demo.model.dequantization.noisy else None,
        )

    button.click(_shown(run), [temperature, num, seed, guidance, denoise], output)


def _interpolate_tab(demo: Demo, examples: Sequence[Path]) -> None:
    with gr.Row():
        start = gr.Image(type="filepath", label="start", height=240, elem_id="interpolate-start")
        end = gr.Image(type="filepath", label="end", height=240, elem_id="interpolate-end")
        with gr.Column():
            steps = gr.Slider(2, MAX_STEPS, value=8, step=1, label="steps (endpoints included)")
            mode = gr.Radio(list(INTERPOLATION_MODES), value="linear", label="path in latent space")
            button = gr.Button("Interpolate", variant="primary", elem_id="interpolate-button")
    output = gr.Image(label="interpolation", format="png", elem_id="interpolate-output")
    pairs = zip(examples[0::2], examples[1::2], strict=False)  # an odd one out is left out
    gr.Examples([[str(a), str(b)] for a, b in pairs], [start, end], elem_id="interpolate-examples")

    def run(start: dict | None, end: dict | None, steps: float, mode: str) -> Any:
        return demo.interpolate(_upload(start), _upload(end), steps, mode)

    button.click(_shown(run), [start, end, steps, mode], output, preprocess=False)


def _inpaint_tab(demo: Demo, examples: Sequence[Path]) -> None:
    with gr.Row():
        editor = gr.ImageEditor(
            type="filepath",
            format="png",
            label="image at the model's resolution: paint the region to fill",
            sources=("upload",),
            transforms=(),
            layers=False,
            brush=gr.Brush(
                default_size=max(1, demo.image_shape[1] // 14),
                colors=[MASK_COLOR],
                color_mode="fixed",
            ),
            elem_id="inpaint-editor",
        )
        with gr.Column():
            preset = gr.Dropdown(
                list(MASK_KINDS), value="center", label="preset mask (used when nothing is painted)"
            )
            iterations = gr.Slider(0, MAX_ITERATIONS, value=25, step=5, label="iteration limit")
            button = gr.Button("Inpaint", variant="primary", elem_id="inpaint-button")
    with gr.Row():
        masked = gr.Image(label="masked input", format="png", elem_id="inpaint-masked")
        completion = gr.Image(label="completion", format="png", elem_id="inpaint-completion")
        original = gr.Image(label="ground truth", format="png", elem_id="inpaint-original")
    summary = gr.Markdown(elem_id="inpaint-summary")
    views = [demo.model_view(Upload(path, path.name)) for path in examples]
    gr.Examples([[view] for view in views], [editor], elem_id="inpaint-examples")

    def background(value: dict | None) -> Upload | None:
        path = value["background"] if value else None
        return Upload(Path(path), "the image") if path else None

    def view(value: dict | None) -> Any:
        image = background(value)
        if image is None:
            return gr.skip()
        shown = demo.model_view(image)
        with Image.open(image.path) as canvas:
            # Already the model's size (an example, or a view just shown): keep the painting.
            return gr.skip() if canvas.size == shown.size else shown

    def run(
        value: dict | None,
        preset: str,
        iterations: float,
        progress: Any = gr.Progress(),  # noqa: B008 (how Gradio hands a handler its progress bar)
    ) -> tuple[Any, ...]:
        layers = [Path(layer) for layer in value["layers"]] if value else []
        result = demo.inpaint(
            background(value),
            layers,
            preset,
            iterations,
            progress=lambda k: progress((k, int(iterations)), desc="inpainting", unit="steps"),
        )
        return result.masked, result.completion, result.original, result.summary

    # An uploaded photo is replaced by the model's view of it, so that painted pixels are the
    # model's pixels and the brush has a sensible size for every photo. (The editor also fires
    # `upload` when an example is loaded.)
    editor.upload(_shown(view), editor, editor, show_progress="hidden")
    button.click(_shown(run), [editor, preset, iterations], [masked, completion, original, summary])


def _manipulate_tab(
    demo: Demo, examples: Sequence[Path], sets: Mapping[str, Sequence[Path]]
) -> None:
    with gr.Row():
        image = gr.Image(type="filepath", label="image", height=240, elem_id="manipulate-image")
        positive = gr.File(
            file_count="multiple",
            label="positive set (move towards)",
            elem_id="manipulate-positive",
        )
        negative = gr.File(
            file_count="multiple", label="negative set (move from)", elem_id="manipulate-negative"
        )
    with gr.Row():
        alpha = gr.Slider(
            -MAX_ALPHA, MAX_ALPHA, value=1.5, step=0.1, label="alpha (step along the direction)"
        )
        button = gr.Button("Manipulate", variant="primary", elem_id="manipulate-button")
    output = gr.Image(
        label="alpha·0 (the input) … alpha", format="png", elem_id="manipulate-output"
    )
    gr.Examples([[str(path)] for path in examples], [image], elem_id="manipulate-examples")
    names = list(sets)
    choices = [(names[i], names[1 - i]) for i in range(2)] if len(names) == 2 else []
    gr.Examples(
        [[list(map(str, sets[a])), list(map(str, sets[b]))] for a, b in choices],
        [positive, negative],
        example_labels=[f"{b} → {a}" for a, b in choices],
        elem_id="manipulate-sets",
    )

    def run(
        image: dict | None, positive: list[dict] | None, negative: list[dict] | None, alpha: float
    ) -> Any:
        uploads = [
            [upload for upload in map(_upload, payloads or []) if upload is not None]
            for payloads in (positive, negative)
        ]
        return demo.manipulate(_upload(image), *uploads, alpha)

    button.click(_shown(run), [image, positive, negative, alpha], output, preprocess=False)


def _score_tab(demo: Demo, examples: Sequence[Path]) -> None:
    files = gr.File(file_count="multiple", label="images", elem_id="score-files")
    button = gr.Button("Score", variant="primary", elem_id="score-button")
    table = gr.Dataframe(
        headers=["image", "bits/dim", "preprocessing"],
        label="bits/dim at the bin centres (lower = more likely under the model)",
        interactive=False,
        column_widths=["30%", "15%", "55%"],
        elem_id="score-table",
    )
    gr.Examples([[list(map(str, examples))]], [files], elem_id="score-examples")

    def run(payloads: list[dict] | None) -> list[list[Any]]:
        uploads = [upload for upload in map(_upload, payloads or []) if upload is not None]
        return [list(row) for row in demo.score(uploads)]

    button.click(_shown(run), files, table, preprocess=False)


def _likeness_tab(demo: Demo, examples: Sequence[Path]) -> None:
    check = demo.likeness
    gr.Markdown(
        "Every out-of-distribution score of `glowapp ood` for one image (higher = less like the "
        f"training data), against a threshold at {TPR:.0%} TPR on the first "
        f"{check.reference_size} images of {check.reference}; the first check fits them (a "
        "minute or so on a CPU). The histograms show the reference's scores and this image's in "
        "red. Raw likelihood is shown too: it is the score that fails (MNIST digits look *more* "
        "likely than clothes)."
    )
    with gr.Row():
        with gr.Column(scale=1):
            image = gr.File(file_count="single", label="image", elem_id="likeness-file")
            button = gr.Button("Check", variant="primary", elem_id="likeness-button")
        with gr.Column(scale=2):
            summary = gr.Markdown(elem_id="likeness-summary")
            table = gr.Dataframe(
                headers=["score", "value", "threshold τ", "verdict"],
                interactive=False,
                elem_id="likeness-table",
            )
    plot = gr.Image(label="where the image falls on the reference", elem_id="likeness-plot")
    gr.Examples([[str(path)] for path in examples], [image], elem_id="likeness-examples")

    def run(payload: dict | None) -> tuple[str, list[list[Any]], Image.Image]:
        result = check.judge(_upload(payload))
        return result.summary, result.rows, result.plot

    button.click(_shown(run), image, [summary, table, plot], preprocess=False)


def build_app(
    demo: Demo, examples: Sequence[Path], sets: Mapping[str, Sequence[Path]] | None = None
) -> gr.Blocks:
    """The demo page: a Sample, Interpolate, Inpaint, Manipulate, Score and "Is this image like
    the training data?" tab, with ``examples`` to pick, and two example ``sets`` (by name) of
    images for a direction."""
    with gr.Blocks(title="glowapp demo", analytics_enabled=False) as app:
        gr.Markdown(
            f"## glowapp demo\n{demo.description}. Photos are converted, resized and "
            "center-cropped to the model's input, exactly as `glowapp` tools do."
        )
        with gr.Tab("Sample", id="sample"):
            _sample_tab(demo)
        with gr.Tab("Interpolate", id="interpolate"):
            _interpolate_tab(demo, examples)
        with gr.Tab("Inpaint", id="inpaint"):
            _inpaint_tab(demo, examples)
        with gr.Tab("Manipulate", id="manipulate"):
            _manipulate_tab(demo, examples, sets or {})
        with gr.Tab("Score", id="score"):
            _score_tab(demo, examples)
        with gr.Tab("Is this image like the training data?", id="likeness"):
            _likeness_tab(demo, examples)
    return app


def launch(app: gr.Blocks, host: str, port: int, block: bool = True) -> None:
    """Serve ``app`` on ``host:port``; ``block=False`` returns once it is up (for tests)."""
    app.launch(
        server_name=host,
        server_port=port,
        share=False,
        max_file_size=MAX_UPLOAD_BYTES,
        ssr_mode=False,
        pwa=False,
        mcp_server=False,
        enable_monitoring=False,
        prevent_thread_lock=not block,
        quiet=not block,
    )


def serve(model: ImageFlow, host: str, port: int, console: Console) -> None:
    """Serve the demo of ``model`` until interrupted (the ``glowapp demo`` command)."""
    if host not in ("127.0.0.1", "localhost", "::1"):
        console.print(f"warning: serving on {host}: anyone who can reach it can use the demo")
    with tempfile.TemporaryDirectory(prefix="glowapp-demo-") as directory:
        examples = write_examples(Path(directory))
        sets = write_example_sets(Path(directory) / "sets")
        launch(build_app(Demo(model, default_background(model)), examples, sets), host, port)
