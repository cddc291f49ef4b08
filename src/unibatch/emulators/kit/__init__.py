"""What every provider emulator is built from: knobs, faults, clock, errors, fake text.

A provider package imports from here and from nowhere else in the emulators, except the
OpenAI fakes that OpenAI-shaped providers (xAI) reuse.
"""

from .attempts import AttemptCounter, attempts_needed, fails_on_attempt
from .base import Clock, Handler, ProviderEmulator
from .config import EmulatorConfig, Fault
from .errors import EmulatedError
from .faults import FaultPlan, requested_error
from .responses import json_response, paced, read_chunks, rechunk

__all__ = [
    "AttemptCounter",
    "Clock",
    "EmulatedError",
    "EmulatorConfig",
    "Fault",
    "FaultPlan",
    "Handler",
    "ProviderEmulator",
    "attempts_needed",
    "fails_on_attempt",
    "json_response",
    "paced",
    "read_chunks",
    "rechunk",
    "requested_error",
]
