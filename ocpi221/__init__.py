"""ocpi221: the OCPI 2.2.1 wire objects, one module per OCPI module (pure: msgspec only).

`types` (DateTime, CiString, Role, the envelope), `versions`, `credentials`, `locations`,
`sessions`, `chargingprofiles`, `hubclientinfo`. Names are the spec's, verbatim. Imports nothing
of the service: `optimizer`, `profiles`, `scsp` and `cposim` may all import it.
"""
