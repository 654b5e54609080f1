"""What the provider registry hands out: plain records with no database handles in them."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any


@dataclass(frozen=True)
class ValidationReport:
    """What the validator learnt about a provider file without storing anything.

    `capabilities` holds `intervals` (interval strings), `has_history`, `configurable` (the
    preference schema as JSON: key -> type, default, help, choices), `secrets` (declared secret
    key names), `rate_limit` ([calls, seconds]) and `concurrency`.
    """

    name: str
    kind: str
    class_name: str
    sha256: str
    capabilities: dict[str, Any]


@dataclass(frozen=True)
class ProviderRecord:
    """One registered provider as the CLI, console and engine see it (never its secrets).

    `notices` carries what the user must know about the change just made, for example that
    secrets were dropped because the code changed.
    """

    name: str
    kind: str
    class_name: str
    sha256: str
    preferences: dict[str, Any]
    capabilities: dict[str, Any]
    secret_names: list[str]
    enabled: bool
    status: str
    status_detail: str | None
    bundled: bool
    asset_count: int
    created_at: datetime
    updated_at: datetime
    notices: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class StoredCode:
    """What a provider host is given: the code (checked against its sha256), the stored
    preferences and the decrypted secrets of one provider. Secrets never appear in repr."""

    name: str
    source: str
    sha256: str
    preferences: dict[str, Any]
    secrets: dict[str, str] = field(repr=False)
