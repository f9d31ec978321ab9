"""ingest: what CPOs tell us (Sessions, Locations, HubClientInfo), pushed to our receivers or pulled."""
