"""Checks shared by the unit tests.

Imported as ``tests.unit.helpers``: run pytest from the repository's root with
``python -m pytest`` (as ``make test`` does).
"""

from __future__ import annotations

from collections.abc import Callable

import pytest

from trafex.model.errors import ValidationError


def refused(
    field: str | None, call: Callable[..., object], *args: object, **kwargs: object
) -> ValidationError:
    """Check that ``call(*args, **kwargs)`` raises a ValidationError naming ``field``
    (None: naming no part); return the error for more checks."""
    with pytest.raises(ValidationError) as info:
        call(*args, **kwargs)
    assert field == info.value.field
    return info.value
