"""An SMSC simulator speaking real SMPP 3.4 on a TCP socket (smpp34's server side)."""

from echelon.channels.simulator.models import (
    LogNormalDelay,
    ReceiptFailure,
    ReceivedMessage,
    ReplyText,
    SimulatorConfig,
    SimulatorStats,
    StatusShare,
)
from echelon.channels.simulator.process import SimulatorError, SimulatorProcess, free_port
from echelon.channels.simulator.run import main, run

__all__ = [
    "LogNormalDelay",
    "ReceiptFailure",
    "ReceivedMessage",
    "ReplyText",
    "SimulatorConfig",
    "SimulatorError",
    "SimulatorProcess",
    "SimulatorStats",
    "StatusShare",
    "free_port",
    "main",
    "run",
]
