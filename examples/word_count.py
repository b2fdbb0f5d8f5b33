"""A workspace-free task: count the words of a text (no lakeFS involved)."""

from __future__ import annotations

from pydantic import BaseModel, Field

from perago import task


class WordCountParams(BaseModel):
    text: str = Field(description="The text to count words in.")


class WordCountResult(BaseModel):
    words: int = Field(description="Number of whitespace-separated words.")


@task(name="word_count", owner_email="platform@example.com")
def word_count(params: WordCountParams) -> WordCountResult:
    """Split on any whitespace, so runs of spaces and newlines count as one separator."""
    return WordCountResult(words=len(params.text.split()))
