"""profiles: a session's planned power -> OCPI ChargingProfile, and compliance (pure)."""
