"""The client's view of the grid: which storage servers exist and how to reach them."""
