"""``emostream dashboard``: a web page of what the stream does, fed by the public topics like any downstream consumer.

- ``state``: what the page shows, built from the topics' records (pure, bounded).
- ``feeds``: the dashboard's consumers of the topics and its probe of the brokers.
- ``server``: the page, its snapshot as JSON and as Server-Sent Events, the optional token.
- ``service``: the three together, as the command runs them.
- ``static/``: the page itself (HTML, CSS, plain JavaScript drawing SVG; no library, no CDN).
"""
