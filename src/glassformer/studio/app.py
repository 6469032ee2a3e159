"""glassformer studio: a Gradio app with one tab per model, served on 127.0.0.1 and usable offline.

``build_app(models)`` makes the ``gr.Blocks`` and lays out the tabs (one module each in ``studio/tabs/``);
``serve(...)`` trains the quick sentiment model when none is saved yet, then launches it. Offline by
design: a theme with system fonts only (the default theme fetches Google Fonts), analytics off,
server-side rendering off (it would need Node), no share link unless asked, uploads capped in size and
decoded as PNG/JPEG only.
"""

from __future__ import annotations

import os

# Gradio reads this when it is imported: no usage statistics are sent anywhere.
os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")

import contextlib  # noqa: E402 - the environment must be set before gradio is imported
import functools  # noqa: E402
import signal  # noqa: E402
import threading  # noqa: E402
from pathlib import Path  # noqa: E402
from typing import Any, Iterator  # noqa: E402

import gradio as gr  # noqa: E402

from glassformer.studio.answering import BATCH_THREADS, PAGE_THREADS, Answering  # noqa: E402
from glassformer.studio.batching import MainThreadExecutor, api_app, use_executor  # noqa: E402
from glassformer.studio.jobs import TrainingQueue  # noqa: E402
from glassformer.studio.models import StudioModels, default_models  # noqa: E402
from glassformer.studio.tabs import generate, sentiment, tokenizer, translate, vision, walkthrough  # noqa: E402

SYSTEM_FONTS = ["system-ui", "-apple-system", "Segoe UI", "Roboto", "Helvetica Neue", "Arial", "sans-serif"]
MONO_FONTS = ["ui-monospace", "SFMono-Regular", "Menlo", "Consolas", "Liberation Mono", "monospace"]
MAX_FILE_SIZE = "5mb"


def theme() -> gr.themes.Base:
    """Gradio's default look with system fonts, so no font is fetched from the network."""
    return gr.themes.Default(font=SYSTEM_FONTS, font_mono=MONO_FONTS)


def build_app(models: StudioModels) -> gr.Blocks:
    """The studio's ``gr.Blocks``: Sentiment, Walkthrough (one per family), Tokenizer, Translate, Vision and Generate tabs.

    Each tab's components, events and handlers live in its own module under :mod:`glassformer.studio.tabs`.
    """
    with gr.Blocks(title="glassformer studio", analytics_enabled=False) as app:
        gr.Markdown("# glassformer studio\nSee inside transformers: type a sentence, watch it become tokens, "
                    "vectors, attention and a prediction.")
        with gr.Tab("Sentiment", id="sentiment"):
            sentiment.build(models)
        with gr.Tab("Walkthrough", id="walkthrough"):
            walkthrough.build(models)
        with gr.Tab("Tokenizer", id="tokenizer"):
            tokenizer.build()
        with gr.Tab("Translate", id="translate"):
            translate.build(models)
        with gr.Tab("Vision", id="vision"):
            vision.build(models)
        with gr.Tab("Generate", id="generate"):
            generate.build(models)
    return app


# --- serving -------------------------------------------------------------------------------------

def ensure_sentiment_model(directory: str | Path | None = None) -> Path:
    """The directory of a saved sentiment model; the quick MiniLM preset is trained there first if none is saved."""
    from glassformer.pretrained.loading import CheckpointError
    from glassformer.tasks import sentiment
    from glassformer.tasks.pipeline import load_predictor
    from glassformer.training.saved import SavedModelError

    directory = Path(directory) if directory is not None else sentiment.default_out_dir(sentiment.get_preset("quick"))
    try:
        load_predictor(directory, "sentiment")
        return directory
    except (SavedModelError, CheckpointError, FileNotFoundError, ValueError):
        pass
    print(f"No sentiment model in {directory} yet: fine-tuning MiniLM on the movie-review sentences "
          "(quick preset, once; a few minutes on 2 CPU cores).", flush=True)
    run = sentiment.train("quick", directory, overwrite=True)
    print(f"Trained in {run.total_seconds:.0f} s, test accuracy {run.test_accuracy:.1%}.", flush=True)
    return directory


def launch(app: gr.Blocks, host: str = "127.0.0.1", port: int = 7860, share: bool = False,
           block: bool = True, quiet: bool = False, api: Any = None) -> Any:
    """Serve `app` (offline theme, capped uploads, no share link unless asked); `api`, an ASGI app, at ``/api``."""
    from starlette.routing import Mount

    app.queue(default_concurrency_limit=4)
    extra = {} if api is None else {"routes": [Mount("/api", api)],
                                    "lifespan": lambda _: api.router.lifespan_context(api)}
    return app.launch(server_name=host, server_port=port, share=share, theme=theme(),
                      max_file_size=MAX_FILE_SIZE, ssr_mode=False, prevent_thread_lock=not block, quiet=quiet,
                      show_error=False, footer_links=["api"], mcp_server=False, pwa=False, app_kwargs=extra)


LOCAL_HOSTS = ("127.0.0.1", "localhost", "::1")


def background_training(models: StudioModels) -> TrainingQueue:
    """Queue the missing models' training, one at a time in this order: vision, translation, language model.

    The sentiment model exists before the app does; each queued tab shows its place in the queue,
    then its run's progress and curve, and switches to the model the moment it is saved.
    """
    return TrainingQueue([models.vision, models.translate, models.generate]).start()


def serve(host: str = "127.0.0.1", port: int = 7860, share: bool = False, sentiment_dir: str | Path | None = None,
          allow_remote_training: bool = False, train_missing: bool = True, preset: str = "quick",
          **task_dirs: str | Path | None) -> None:
    """`glassformer studio`: make sure a sentiment model exists, build the app and serve it until interrupted.

    `task_dirs` (``translate_dir``, ``vision_dir``, ``generate_dir``) replace the cache's models. With
    `train_missing` every other family whose model is missing is trained in the background, once
    (`preset`: "quick", or "tiny" to check the machinery in a minute or two). A studio other machines
    can reach (``host`` beyond this one, or ``share``) trains nothing unless `allow_remote_training`:
    a training run takes the machine's cores for minutes.
    """
    directory = ensure_sentiment_model(sentiment_dir)
    dirs = {name: Path(value) for name, value in task_dirs.items() if value is not None}
    models = default_models(directory, preset=preset, **dirs)
    if (host not in LOCAL_HOSTS or share) and not allow_remote_training:
        for slot in (models.translate, models.vision, models.generate):
            slot.trainer = None
    # The policy (studio/answering.py): a request comes first; the training process is stopped while one runs.
    answering = Answering()
    slots = (models.translate, models.vision, models.generate)
    for slot in slots:
        if slot.trainer is not None:
            slot.trainer = answering.pausing(slot.trainer)
    queue = None
    if train_missing:  # after the wrapping above, so that the queued runs pause for requests too
        queue = background_training(models)
        if queue.slots:
            names = ", ".join(slot.name for slot in queue.slots)
            print(f"Training the missing models in the background, one at a time ({names}; the {preset} preset, "
                  "once): their tabs show the progress and switch to each model when it is saved.", flush=True)
    # Batches of gathered requests compute in this (the main) thread, with the torch threads it has (batching.py).
    batches = MainThreadExecutor()
    use_executor(batches)
    try:
        app = answering.install(build_app(models), threads=PAGE_THREADS)
        api = api_app(directory, counted=functools.partial(answering.counted, threads=BATCH_THREADS))
        print(f"glassformer studio: http://{host}:{port} (Ctrl+C stops it); for programs: POST "
              f"http://{host}:{port}/api/predict. The page's requests compute with {PAGE_THREADS} torch "
              f"thread, batches of gathered requests with {BATCH_THREADS} in the main thread; background "
              "training runs in a process of its own, stopped while a request is answered.", flush=True)
        with sigterm_as_interrupt():
            launch(app, host, port, share, block=False, api=api)
            try:
                batches.run(lambda: app.is_running)  # until Ctrl+C or SIGTERM
            except KeyboardInterrupt:
                print("glassformer studio: stopping.", flush=True)
            finally:
                app.close()  # the requests it accepted finish in a worker thread (MainThreadExecutor)
    finally:  # the training processes end with the studio (and on Linux when it is killed: jobs.ends_with_parent)
        use_executor(None)
        batches.shutdown(wait=False)
        if queue is not None:
            queue.stop()
        for slot in slots:
            slot.stop_training()


@contextlib.contextmanager
def sigterm_as_interrupt() -> Iterator[None]:
    """Within the block, SIGTERM (``kill``, ``docker stop``, a supervisor) stops the studio as Ctrl+C does.

    Python's default SIGTERM ends the process at once, without ``finally`` blocks: the training
    child would then be ended by the kernel (``PR_SET_PDEATHSIG``) and never waited for, leaving a
    zombie's CPU time out of every account of the studio's own work.
    """
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def interrupt(signum: int, frame: Any) -> None:
        raise KeyboardInterrupt

    previous = signal.signal(signal.SIGTERM, interrupt)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)
