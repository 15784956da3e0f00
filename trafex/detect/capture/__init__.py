"""The capture stage: sources of frames (pcap and pcapng files, live interfaces).

A source (:class:`~trafex.detect.capture.source.Source`) yields chunks of frames
(:class:`~trafex.detect.capture.frames.Chunk`): runs of frames where they lie in
the bytes it read. One record loop per format: :mod:`~trafex.detect.capture.pcap`,
:mod:`~trafex.detect.capture.pcapng`, :mod:`~trafex.detect.capture.live`.
"""
