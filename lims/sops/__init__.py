"""SOPs as versioned data: typed parameters, inputs, outputs, instruments and reagents."""
