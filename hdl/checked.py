"""Components whose constructor arguments are checked before the object exists.

A component class that derives from :class:`ArgumentChecked` defines
``check(*args, **kwargs)``: a class method that raises with one sentence when an
argument is bad. It runs in ``__new__``, so a rejected component is never
created (and Amaranth has no unused elaboratable to warn about).
"""

from __future__ import annotations

__all__ = ["ArgumentChecked"]


class ArgumentChecked:
    @classmethod
    def check(cls, *args, **kwargs) -> None:
        """Raise when the constructor arguments are bad (override)."""

    def __new__(cls, *args, **kwargs):
        cls.check(*args, **kwargs)
        return super().__new__(cls, *args, src_loc_at=1, **kwargs)
