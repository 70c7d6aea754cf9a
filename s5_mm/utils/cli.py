"""argparse types for numeric options: argparse then names the option and
the bad value (``--tile-size: must be a positive integer, got 0``)."""
import argparse


def _number(text: str, kind):
    try:
        return kind(text)
    except ValueError:
        raise argparse.ArgumentTypeError(
            f'expected {"an integer" if kind is int else "a number"}, got '
            f'{text!r}') from None


def positive_int(text: str) -> int:
    value = _number(text, int)
    if value < 1:
        raise argparse.ArgumentTypeError(
            f'must be a positive integer, got {text!r}')
    return value


def non_negative_int(text: str) -> int:
    value = _number(text, int)
    if value < 0:
        raise argparse.ArgumentTypeError(f'must be >= 0, got {text!r}')
    return value


def unit_fraction(text: str) -> float:
    """A fraction in (0, 1]."""
    value = _number(text, float)
    if not 0 < value <= 1:
        raise argparse.ArgumentTypeError(
            f'must be a fraction in (0, 1], got {text!r}')
    return value
