"""The GoBGP side of trafex: stubs, model ⇄ GoBGP API messages, the client, the sidecar."""
