"""The example tasks do what their docs say when called directly (as task authors test them)."""

from __future__ import annotations

from pathlib import Path

import pytest
from examples.render_audio import RenderParams, RenderResult, render_audio
from examples.word_count import WordCountParams, WordCountResult, word_count
from pydantic import ValidationError

from perago import load_module_task


def test_word_count() -> None:
    assert word_count(WordCountParams(text="  one two\nthree\t four ")) == WordCountResult(words=4)
    assert word_count(WordCountParams(text="")) == WordCountResult(words=0)


def test_render_audio_renders_each_raw_track(tmp_path: Path) -> None:
    raw = tmp_path / "raw"
    raw.mkdir()
    (raw / "b.txt").write_text("second track\n")
    (raw / "a.txt").write_text("first track\n")
    (raw / "notes.md").write_text("ignored\n")

    result = render_audio(tmp_path, RenderParams(gain=1.5))

    assert result == RenderResult(rendered=2)
    rendered = tmp_path / "rendered"
    assert sorted(p.name for p in rendered.iterdir()) == ["a.txt", "b.txt"]
    assert (rendered / "a.txt").read_text() == "# gain=1.5\nFIRST TRACK\n"
    assert (rendered / "b.txt").read_text() == "# gain=1.5\nSECOND TRACK\n"


def test_render_audio_rejects_negative_gain() -> None:
    with pytest.raises(ValidationError):
        RenderParams(gain=-1)


def test_examples_declare_the_documented_tasks() -> None:
    audio = load_module_task("examples.render_audio")
    assert audio.name == "render_audio"
    assert audio.workspace is not None
    assert audio.workspace.prefix == "audio"
    assert not audio.workspace.read_only
    assert [g.label() for g in audio.workspace.pre] == ["require_dir('raw')"]
    words = load_module_task("examples.word_count")
    assert words.name == "word_count"
    assert not words.has_workspace
