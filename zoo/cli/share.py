"""`zoo push`, `zoo pull` and `zoo serve`: sharing through the Hub (or any fsspec URL) and the web page."""
from __future__ import annotations

from typing import Annotated, Optional

import typer

from .common import ZooOpt, errors_as_exit, fail


def push(
    ref: Annotated[str, typer.Argument(help="Model: NAME or NAME@VERSION (see zoo list).")],
    target: Annotated[str, typer.Argument(help="hf:OWNER/REPO, or an fsspec URL (file://, memory://, s3://...).")],
    private: Annotated[bool, typer.Option("--private", help="Create the Hub repo as private (if it does not exist yet).")] = False,
    zoo: ZooOpt = None,
) -> None:
    """Publish a zoo version as a Hub-shaped folder (model.safetensors, config.json, README.md model card); the version becomes tag vN."""
    from zoo.sharing.hub import push as run_push

    with errors_as_exit():
        r = run_push(ref, target, zoo=zoo, private=private)
    typer.echo(f"pushed {r['ref']} to {r['target']} as tag {r['tag']} ({', '.join(r['files'])}; {r['bytes'] / 1e6:.2f} MB)"
               + (f", commit {r['commit'][:12]}" if r.get("commit") else ""))


def pull(
    source: Annotated[str, typer.Argument(help="hf:OWNER/REPO[@REV] or an fsspec URL[@REV]; REV is a tag (v2), branch or commit.")],
    name: Annotated[Optional[str], typer.Option("--name", "-n", help="Name in your zoo (default: the name it was pushed under).")] = None,
    zoo: ZooOpt = None,
) -> None:
    """Download a shared model, verify it (sha256, safetensors, fits its network) and add it as the next version of NAME."""
    from zoo.sharing.hub import pull as run_pull

    with errors_as_exit():
        r = run_pull(source, name=name, zoo=zoo)
    typer.echo(f"pulled {r['source']} into {r['zoo']} as {r['ref']} ({r['bytes'] / 1e6:.2f} MB, sha256 {r['sha256'][:12]}"
               + (f", commit {r['commit'][:12]}" if r.get("commit") else "") + ")")


def serve(
    host: Annotated[str, typer.Option(help="Interface to bind; 0.0.0.0 exposes the page to your network.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(min=1, max=65535, help="TCP port.")] = 8000,
    zoo: ZooOpt = None,
) -> None:
    """Serve a web page (and its JSON API, documented at /docs) to stylise photos with the zoo's models."""
    try:
        import uvicorn

        from zoo.serve.app import create_app
    except ImportError as e:
        fail(f"zoo serve needs the serve extra ({e.name} is missing): pip install 'style-zoo[serve]'")
    with errors_as_exit():
        application = create_app(zoo=zoo)
    typer.echo(f"serving the zoo on http://{host}:{port}/ (API docs at /docs); Ctrl-C stops")
    # A stop waits at most 3 s for open responses (a Gatys progress stream never ends by itself);
    # then the app's shutdown stops the Gatys worker and removes its files.
    uvicorn.run(application, host=host, port=port, log_level="warning", timeout_graceful_shutdown=3)
