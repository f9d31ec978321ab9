"""dispatch: choose what to send, send it, release; take results and active profiles, judge compliance."""
