"""Permission levels (MLflow's names) and what each allows."""

from __future__ import annotations

import enum

from runyard.errors import InvalidParameterValue

__all__ = ["NEEDS", "RESOURCE_TYPES", "Permission", "check_resource_type"]

#: What a grant can be on: an experiment (by id) or a registered model (by name).
RESOURCE_TYPES = ("experiment", "registered_model")
#: The abilities a rule can ask for, weakest first.
NEEDS = ("read", "use", "update", "delete", "manage")
_LEVEL = {"read": 1, "use": 2, "update": 3, "delete": 4, "manage": 4}


class Permission(enum.Enum):
    """READ < USE < EDIT < MANAGE; NO_PERMISSIONS allows nothing."""

    READ = 1
    USE = 2
    EDIT = 3
    MANAGE = 4
    NO_PERMISSIONS = 0

    @property
    def can_read(self) -> bool:
        """Get, search, list, download."""
        return self.value >= 1

    @property
    def can_use(self) -> bool:
        """READ plus using the resource (e.g. loading a model to serve it)."""
        return self.value >= 2

    @property
    def can_update(self) -> bool:
        """Create runs, log, set tags, rename, upload artifacts."""
        return self.value >= 3

    @property
    def can_delete(self) -> bool:
        """Delete and restore."""
        return self.value >= 4

    @property
    def can_manage(self) -> bool:
        """Grant and revoke other users' permissions on the resource."""
        return self.value >= 4

    def allows(self, need: str) -> bool:
        """Whether this permission gives ``need`` (one of :data:`NEEDS`)."""
        return self.value >= _LEVEL[need]

    @classmethod
    def parse(cls, name: str | None) -> Permission:
        """A permission from its name (case-insensitive), or a clear error."""
        text = (name or "").strip().upper()
        try:
            return cls[text]
        except KeyError:
            valid = ", ".join(p.name for p in cls)
            raise InvalidParameterValue(
                f"Invalid permission '{name}'. Valid permissions are: {valid}"
            ) from None


def check_resource_type(resource_type: str | None) -> str:
    """``resource_type`` when it is one runyard grants on, else a clear error."""
    if resource_type not in RESOURCE_TYPES:
        raise InvalidParameterValue(
            f"Invalid resource_type '{resource_type}'. Valid types are: {', '.join(RESOURCE_TYPES)}"
        )
    return resource_type
