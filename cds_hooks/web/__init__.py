"""The pages a person opens: the SMART app (timeline, "why this card"), its launch and sessions, the
dashboard and the rule and source pages. Server-rendered, autoescaped templates, no external assets.
The CDS Hooks endpoints themselves are in ``api/``."""
