"""Readable random run names (``sincere-owl-417``), as MLflow generates for unnamed runs."""

from __future__ import annotations

import random

__all__ = ["random_run_name"]

_ADJECTIVES = (
    "able agile amber ample astute bold brave bright brisk calm canny clever cosmic crisp "
    "curious daring deft eager earnest fearless fleet gentle gifted glad golden grand honest "
    "humble jolly keen kind lively loyal lucid lunar mellow merry mighty modest nimble noble "
    "placid polite proud quick quiet rare rustic serene sharp shy silent sincere smooth solar "
    "spry steady stellar sunny swift tidy vast vivid warm wise witty zesty"
).split()
_NOUNS = (
    "ant ape auk bass bat bear bee bird boar carp cat chimp cod colt crab crane crow deer "
    "doe dove duck eel elk fawn finch fish flea fly fowl fox frog gnat gnu goat goose gull "
    "hare hawk hen horse hound jay kit koala lamb lark lion lynx mole moth mouse mule newt "
    "owl ox panda perch pig pony quail ram rat robin seal shark sheep shrew skink slug snail "
    "snake sow stag stork swan tern toad trout vole wasp whale wolf worm wren yak zebra"
).split()


def random_run_name(rng: random.Random | None = None) -> str:
    """``<adjective>-<animal>-<0..999>``."""
    r = rng or random
    return f"{r.choice(_ADJECTIVES)}-{r.choice(_NOUNS)}-{r.randint(0, 999)}"
