"""The actions of a FlowSpec rule (RFC 8955 §7, RFC 7674): traffic-rate (discard),
redirect to a route-target, DSCP re-marking, sample and terminal."""

from __future__ import annotations

import enum
import ipaddress
import math
import struct
from dataclasses import dataclass

from trafex.model.errors import ValidationError


class RouteTargetKind(enum.Enum):
    """The three redirect extended communities (RFC 8955 §7.4, RFC 7674)."""

    AS2 = "as2"  # type 0x8008: 2-byte ASN, 4-byte local
    IPV4 = "ipv4"  # type 0x8108: IPv4 address, 2-byte local
    AS4 = "as4"  # type 0x8208: 4-byte ASN, 2-byte local


@dataclass(frozen=True, slots=True)
class RouteTarget:
    """The route-target a redirect action points at (``6:302``, ``192.0.2.1:7``)."""

    kind: RouteTargetKind
    global_admin: int | ipaddress.IPv4Address
    local_admin: int

    def __post_init__(self) -> None:
        if self.kind is RouteTargetKind.IPV4:
            if not isinstance(self.global_admin, ipaddress.IPv4Address):
                raise ValidationError("an IPv4 route-target needs an IPv4 address", "redirect")
            local_max = 0xFFFF
        else:
            if not isinstance(self.global_admin, int):
                raise ValidationError("an AS route-target needs an AS number", "redirect")
            asn_max = 0xFFFF if self.kind is RouteTargetKind.AS2 else 0xFFFFFFFF
            if not 0 <= self.global_admin <= asn_max:
                raise ValidationError(f"AS {self.global_admin} is out of range", "redirect")
            local_max = 0xFFFFFFFF if self.kind is RouteTargetKind.AS2 else 0xFFFF
        if not 0 <= self.local_admin <= local_max:
            raise ValidationError(
                f"local part {self.local_admin} is out of range 0..{local_max}", "redirect"
            )

    @classmethod
    def parse(cls, text: str) -> RouteTarget:
        """``ASN2:NN``, ``ASN4:NN`` (an ASN above 65535, or written ``65000L:NN``), ``IPv4:NN``."""
        spec = text.strip()
        for prefix in ("target:", "rt:", "RT:"):
            spec = spec.removeprefix(prefix)
        glob, sep, local_text = spec.rpartition(":")
        if not sep or not glob:
            raise ValidationError(f"{text!r} is not ASN:NN or IPv4:NN", field="redirect")
        try:
            local = int(local_text)
        except ValueError:
            raise ValidationError(f"bad local part in {text!r}", field="redirect") from None
        if "." in glob:
            try:
                address = ipaddress.IPv4Address(glob)
            except ValueError:
                raise ValidationError(f"bad IPv4 address in {text!r}", "redirect") from None
            return cls(RouteTargetKind.IPV4, address, local)
        force4 = glob.upper().endswith("L")
        try:
            asn = int(glob[:-1] if force4 else glob)
        except ValueError:
            raise ValidationError(f"bad AS number in {text!r}", field="redirect") from None
        kind = RouteTargetKind.AS4 if force4 or asn > 0xFFFF else RouteTargetKind.AS2
        return cls(kind, asn, local)

    def __str__(self) -> str:
        suffix = (
            "L" if self.kind is RouteTargetKind.AS4 and int(self.global_admin) <= 0xFFFF else ""
        )
        return f"{self.global_admin}{suffix}:{self.local_admin}"


def float32(value: float) -> float:
    """``value`` as the IEEE-754 single precision number the wire carries."""
    result: float = struct.unpack("!f", struct.pack("!f", value))[0]
    return result


@dataclass(frozen=True, slots=True)
class FlowActions:
    """The actions of a rule (RFC 8955 §7): at most one of each kind.

    ``rate`` is in bytes per second (0 = discard), stored as the float32 the wire
    carries. Discard combines only with sample/terminal.
    """

    rate: float | None = None
    redirect: RouteTarget | None = None
    mark: int | None = None
    sample: bool = False
    terminal: bool = False

    def __post_init__(self) -> None:
        if self.rate is not None:
            if not math.isfinite(self.rate) or self.rate < 0:
                raise ValidationError(f"{self.rate} is not a rate in bytes/s", "rate-limit")
            if self.rate > 3.4e38:
                raise ValidationError(f"{self.rate} bytes/s does not fit a float32", "rate-limit")
            object.__setattr__(self, "rate", float32(self.rate))
        if self.mark is not None and not 0 <= self.mark <= 63:
            raise ValidationError(f"DSCP {self.mark} is out of range 0..63", field="mark")
        if not (
            self.rate is not None
            or self.redirect is not None
            or self.mark is not None
            or self.sample
            or self.terminal
        ):
            raise ValidationError(
                "a rule needs an action: discard, rate-limit, redirect, mark or action"
            )
        if self.discard and (self.redirect is not None or self.mark is not None):
            raise ValidationError(
                "discard cannot be combined with redirect or mark", field="discard"
            )

    @property
    def discard(self) -> bool:
        return self.rate == 0.0
