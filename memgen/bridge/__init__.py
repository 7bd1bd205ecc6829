"""The frozen-encoder bridge (docs/bridge.md): a frozen sentence encoder's states of a text
episode's events and questions, and small pointer heads trained over them, in an oracle mode
(key ids given) and an open-text mode (keys matched from the text alone)."""
