"""What ships to help tests and the demo, like ``flask.testing``: the real FHIR test server wrapper.
Never on the request path."""
