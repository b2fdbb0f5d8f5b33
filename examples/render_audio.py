"""A writable workspace task: render every ``raw/*.txt`` "track" into ``rendered/``.

The workspace is the ``audio`` prefix of a lakeFS repository. The task refuses to start without
a ``raw/`` directory and only counts as successful when it rendered at least one file.
"""

from __future__ import annotations

from pathlib import Path

from pydantic import BaseModel, Field

from perago import WorkspaceSpec, require_dir, require_glob, task


class RenderParams(BaseModel):
    gain: float = Field(ge=0, description="Gain recorded in the header of every rendered file.")


class RenderResult(BaseModel):
    rendered: int = Field(description="Number of files written to rendered/.")


@task(
    name="render_audio",
    owner_email="audio-platform@example.com",
    description="Render raw/*.txt tracks into rendered/ with a gain header.",
    workspace=WorkspaceSpec(
        prefix="audio",
        pre=[require_dir("raw")],
        post=[require_glob("rendered/*.txt", min_count=1)],
    ),
)
def render_audio(workspace: Path, params: RenderParams) -> RenderResult:
    """Upper-case each raw track under a ``# gain=<gain>`` header (deterministic output)."""
    output_dir = workspace / "rendered"
    output_dir.mkdir(exist_ok=True)
    sources = sorted((workspace / "raw").glob("*.txt"))
    for source in sources:
        body = source.read_text(encoding="utf-8")
        rendered = f"# gain={params.gain}\n{body.upper()}"
        (output_dir / source.name).write_text(rendered, encoding="utf-8")
    return RenderResult(rendered=len(sources))
