"""Fleet: the operator's watch over cameras and usage across all streams of a server."""
