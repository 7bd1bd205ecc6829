"""Running models on datasets: predictions and scores (``memgen eval``), the long-context stress
test (``memgen stress``), and the zoo of built-in models."""
