"""The decode stage: frames → flow table and detector calls.

:class:`~trafex.detect.decode.stage.DecodeStage` takes the runs of frames a
source reads; :class:`~trafex.detect.decode.links.Decoder` decodes one frame
at a time, in layers (:mod:`~trafex.detect.decode.links` on
:mod:`~trafex.detect.decode.network` on :mod:`~trafex.detect.decode.dispatch`);
:mod:`~trafex.detect.decode.batch` decodes runs of Ethernet frames with numpy
to the same result.
"""
