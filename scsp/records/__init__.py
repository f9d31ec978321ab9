"""records: what the service keeps, as msgspec Structs and enums (no SQL; `scsp.store` persists them).

`parties` (connected platforms), `sessions` (sessions, locations, EVSE facts, preferences), `grid`
(API keys, site settings, signals), `plans`, `commands` (ChargingProfiles requests, session control,
active profiles).
"""
