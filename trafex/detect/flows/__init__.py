"""The flow table stage: TCP conversations, their records, Wireshark's sequence analysis."""

from trafex.detect.flows.table import (
    DirectionState,
    FlowTableConfig,
    FlowTableStats,
    TcpFlowTable,
    reverse_key,
)

__all__ = ["DirectionState", "FlowTableConfig", "FlowTableStats", "TcpFlowTable", "reverse_key"]
