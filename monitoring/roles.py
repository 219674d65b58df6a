"""The dashboard's roles, apart from `accounts` so that `ltfu --help` can offer them without
importing the password hasher (which hashes once at import)."""

from __future__ import annotations

from typing import Literal, get_args

Role = Literal["viewer", "physician", "data_manager", "admin"]
ROLES: tuple[str, ...] = get_args(Role)
