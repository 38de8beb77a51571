"""Analysis: each stream's pipeline from packets to motion events (intake, ring, decoder, detector,
tracker)."""
