"""trafexd's own gRPC API (trafex.v1): its stubs, the proto ⇄ model adapter, the
servicer trafexd runs, and the typed client that ``trafex-ctl`` and the sensor use.

protobuf stays inside this package: the servicer hands the controller model values,
and the client hands its callers model values and plain dataclasses.
"""
