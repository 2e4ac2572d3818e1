"""Finding records by what people type or scan."""
