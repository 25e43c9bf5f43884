"""The one JSON loader for untrusted text: bounded size, nesting and numbers.

Python's json module recurses once per nesting level (a few thousand ``[``
raise RecursionError, which callers do not expect and which a later
recursive walk, json.dumps included, would hit again) and turns a number of
more than 4,300 digits into a ValueError only after reading it. This loader
answers every malformed, oversized or too deeply nested document with
``BadJSONError`` (a ValueError, so callers' existing ``except ValueError``
keep working) and never anything else.
"""

import json
from collections.abc import Callable
from typing import Any

MAX_DEPTH = 64  # nesting of arrays and objects; Tahoe's documents nest 4 deep at most
MAX_NUMBER_DIGITS = 100  # digits of one integer (a uint64 has 20)


class BadJSONError(ValueError):
    """Text that is not a JSON document within this loader's bounds (the sender's fault)."""


class JSONLimitError(BadJSONError):
    """A JSON document past one of this loader's bounds (size, nesting, digits of a number)."""


def _int_parser(max_digits: int) -> Callable[[str], int]:
    def parse(text: str) -> int:
        if len(text.lstrip("-")) > max_digits:
            raise JSONLimitError(f"a JSON number of {len(text)} digits (at most {max_digits})")
        return int(text)

    return parse


def _depth_ok(value: Any, max_depth: int) -> bool:
    stack = [(value, 1)]
    while stack:
        item, depth = stack.pop()
        if isinstance(item, dict):
            children = list(item.values())
        elif isinstance(item, list):
            children = item
        else:
            continue
        if depth > max_depth:
            return False
        stack.extend((child, depth + 1) for child in children)
    return True


def loads(data: bytes | str, *, max_size: int | None = None, max_depth: int = MAX_DEPTH,
          max_digits: int = MAX_NUMBER_DIGITS) -> Any:
    """The JSON value of `data`, as json.loads gives it; BadJSONError for anything else."""
    if max_size is not None and len(data) > max_size:
        raise JSONLimitError(f"a JSON document of {len(data)} bytes (at most {max_size})")
    try:
        # bytes are decoded as json.loads decodes them (UTF-8, or UTF-16/32 by their BOM or nulls)
        text = data.decode(json.detect_encoding(data), "surrogatepass") if isinstance(data, bytes) else data
        value = json.loads(text, parse_int=_int_parser(max_digits))
    except BadJSONError:
        raise
    except RecursionError:
        raise JSONLimitError(f"JSON nested more than {max_depth} deep") from None
    except (ValueError, UnicodeDecodeError) as e:
        raise BadJSONError(f"not JSON: {_short(e)}") from None
    if not _depth_ok(value, max_depth):
        raise JSONLimitError(f"JSON nested more than {max_depth} deep")
    return value


def _short(error: BaseException) -> str:
    if isinstance(error, RecursionError):
        return f"nested more than {MAX_DEPTH} deep"
    return str(error)[:200]
