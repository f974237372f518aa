"""Page-building code of the SMART app and the dashboard over the clinical core: the timeline's data, chart
geometry and "why this card". No Flask, requests or SQLAlchemy: the api layer renders and serves."""
